import { describe, expect, it } from 'vitest';
import { contains, overlaps, parseCidr, type Cidr } from './cidr.ts';

const c = (s: string): Cidr => parseCidr(s)!;

describe('cidr', () => {
  it('normalises the network address', () => {
    expect(parseCidr('10.96.0.10/12')?.text).toBe('10.96.0.0/12');
    expect(parseCidr('10.96.0.0/33')).toBeUndefined();
    expect(parseCidr('10.96.0.0')).toBeUndefined();
  });

  it('finds overlaps either way round, and none between neighbours', () => {
    expect(overlaps(c('10.96.0.0/12'), c('10.96.0.0/16'))).toBe(true);
    expect(overlaps(c('10.100.0.0/16'), c('10.96.0.0/12'))).toBe(true);
    expect(overlaps(c('10.0.0.0/8'), c('10.244.0.0/16'))).toBe(true);
    expect(overlaps(c('0.0.0.0/0'), c('172.18.0.0/16'))).toBe(true);
    expect(overlaps(c('10.244.0.0/16'), c('10.96.0.0/12'))).toBe(false);
    expect(overlaps(c('10.96.0.0/12'), c('10.112.0.0/12'))).toBe(false);
    expect(overlaps(c('172.18.0.0/16'), c('172.19.0.0/16'))).toBe(false);
  });

  it('contains the ends of a range and nothing past them', () => {
    expect(contains(c('10.96.0.0/12'), '10.96.0.0')).toBe(true);
    expect(contains(c('10.96.0.0/12'), '10.111.255.255')).toBe(true);
    expect(contains(c('10.96.0.0/12'), '10.112.0.0')).toBe(false);
    expect(contains(c('169.254.0.0/16'), '169.254.20.10')).toBe(true);
  });
});
