import { homedir } from 'node:os';
import { relative } from 'node:path';
import { ROOT } from '../../config/suite.ts';
import type { Topology } from '../../config/topology.ts';
import { RunError } from '../../errors.ts';
import type { ExecOptions, ExecResult, Shell } from '../../exec/shell.ts';
import type { Progress } from '../../progress.ts';
import type { Cluster, Libc, UpOptions } from '../provider.ts';
import { UPSTREAM_DNS } from './cluster-dns.ts';
import { KIND_VERSION, kindClusterName, kindNodeNames, kindNotes, nodeImage, NODE_LABEL } from './config.ts';
import type { PodExec } from './context.ts';
import { UPSTREAM_SERVERS_PILLAR } from './dns.ts';
import type { KindManifests } from './fetch-pinned.ts';
import { BACKEND_DATA, DEFAULT_FLANNEL_VERSION, flannelNetConf, flannelPin, PUBLIC_IP, VXLAN_DEVICE } from './flannel.ts';
import { nodeLocalDnsSubstitutions } from './manifests.ts';
import { kubectlExecArgv } from './node.ts';
import { NODE_LOCAL_DNS_SELECTOR } from './nodelocaldns.ts';
import { NODE_LOCAL_DNS_PIN, type ManifestPin } from './pins.ts';
import { KIND_TOOLS, KindProvider, type KindCluster } from './provider.ts';

export interface PlanKindOptions {
  k8sVersion?: string;
  flannelVersion?: string;
  /** For the plan's header only. */
  suite?: string;
  /** Answers that replace the plan's own for some commands (tests of failure paths: a command that fails). */
  reply?: (argv: readonly string[]) => { stdout: string; exitCode: number } | undefined;
}

/** One line of the plan: a command (with its stdin) or a note, under the step or cell it belongs to. */
export interface PlanEntry {
  section: string;
  argv?: string[];
  input?: string;
  note?: string;
}

export interface KindPlan {
  /** A KindProvider over a recording shell and a recording pod exec: nothing runs, nothing is downloaded. */
  provider: KindProvider;
  /** Hand it to the runner: each step and cell label it reports heads the commands that follow it. */
  progress: Progress;
  entries: readonly PlanEntry[];
  render(): string;
}

/** Values only a live cluster knows; the plan shows them as <placeholders>, never as measurements. */
function placeholder(what: string): string {
  return `<${what}>`;
}

function hasArgs(argv: readonly string[], ...want: string[]): boolean {
  return want.every((w) => argv.includes(w));
}

/** kubeadm's default Corefile (what `kubectl get configmap coredns` shows on a fresh kind cluster). */
export const KUBEADM_COREFILE = `.:53 {
    errors
    health {
       lameduck 5s
    }
    ready
    kubernetes cluster.local in-addr.arpa ip6.arpa {
       pods insecure
       fallthrough in-addr.arpa ip6.arpa
       ttl 30
    }
    prometheus :9153
    forward . /etc/resolv.conf {
       max_concurrent 1000
    }
    cache 30
    loop
    reload
    loadbalance
}
`;

/** What the recorded commands changed, so later read-backs answer accordingly. */
interface PlanState {
  topology?: Topology;
  cluster: string;
  /** The NodeLocal DNSCache addon is applied (and not deleted since). */
  nodeLocalDns: boolean;
  corefile: string;
  /** CoreDNS rollouts since bring-up: each replaces every replica (new names, new addresses). */
  rollouts: number;
}

/**
 * Addresses the code parses as addresses (a Corefile's forward list, isIP checks) cannot be <placeholders>:
 * the plan stands them in with documentation addresses (RFC 5737 TEST-NET-2) and says so in its header.
 */
export const PLAN_UPSTREAM_DNS_IP = '198.51.100.53';
export const PLAN_DEAD_UPSTREAM_IP = '198.51.100.54';
const DEAD_UPSTREAM_IP = PLAN_DEAD_UPSTREAM_IP;

/**
 * Replies that let the provider's own code — and the faults and mitigations the runner applies through it —
 * walk through a plan: the minimum each read-back needs, with placeholders where a live cluster would answer.
 * Nothing here pretends to be a result.
 */
function planReplies(state: PlanState): (argv: readonly string[]) => { stdout: string; exitCode: number } {
  let uid = 0;
  const ready = { phase: 'Running', conditions: [{ type: 'Ready', status: 'True' }] };
  const pod = (name: string, namespace: string, nodeName: string, ip: string) => ({
    metadata: { name, namespace, uid: `uid-${++uid}` },
    spec: { nodeName, containers: [] },
    status: { ...ready, podIP: ip },
  });
  const ok = (stdout: string) => ({ stdout, exitCode: 0 });
  return (argv) => {
    const topology = state.topology;
    const containers = topology ? kindNodeNames(state.cluster, topology.nodes.length) : [];
    const topoOf = (c: string | undefined) => topology?.nodes[containers.indexOf(c ?? '')]?.name ?? '?';
    if (argv[0] === 'kind' && argv[1] === 'version') return ok(`kind ${KIND_VERSION} (dry run: not executed)`);
    if (argv[0] === 'kind' && argv[1] === 'get' && argv[2] === 'clusters') return ok('');
    if (hasArgs(argv, 'CNI_COMMAND=VERSION')) return ok('{"cniVersion":"1.0.0","supportedVersions":["0.3.1","1.0.0"]}');
    if (argv.some((a) => a.endsWith('vxprobe')) && hasArgs(argv, '-h')) return ok('usage: vxprobe');
    if (hasArgs(argv, 'uname', '-r')) return ok(placeholder('kernel'));
    if (hasArgs(argv, 'sh', '-c') && argv.some((a) => a.includes('echo $!'))) return ok('1000');
    // vxprobe: one placeholder lookup, so readiness checks pass; a dry run judges nothing.
    if (argv.some((a) => a.endsWith('vxprobe'))) return ok('# vxprobe libc=? mode=dry-run\nL 0 0 0 OK 1\n# done samples=1 wall_us=0\n');
    if (argv.includes(`/sys/class/net/${VXLAN_DEVICE}/address`)) return ok(placeholder(`${topoOf(argv[2])} VtepMAC`));
    // The silent upstream does not answer; every other server does.
    if (argv[0] === 'dig') return argv.includes(`@${DEAD_UPSTREAM_IP}`) ? { stdout: '', exitCode: 9 } : ok(argv.includes('+short') ? placeholder('answer') : '');
    if (argv[0] !== 'kubectl' || !hasArgs(argv, '-o', 'json')) return ok('');
    if (!topology) return ok('{"items":[]}');
    if (hasArgs(argv, 'get', 'nodes')) {
      return ok(JSON.stringify({
        items: topology.nodes.map((n, i) => ({
          metadata: {
            name: containers[i],
            labels: { [NODE_LABEL]: n.name },
            annotations: { [BACKEND_DATA]: JSON.stringify({ VNI: topology.vxlan.vni, VtepMAC: placeholder(`${n.name} VtepMAC`) }), [PUBLIC_IP]: placeholder(`${n.name} InternalIP`) },
          },
          spec: { podCIDR: placeholder(`${n.name} podCIDR`) },
          status: { addresses: [{ type: 'InternalIP', address: placeholder(`${n.name} InternalIP`) }], conditions: ready.conditions },
        })),
      }));
    }
    if (hasArgs(argv, 'configmap', 'coredns')) return ok(JSON.stringify({ data: { Corefile: state.corefile } }));
    if (hasArgs(argv, NODE_LOCAL_DNS_SELECTOR)) {
      // One Ready node-cache pod per node while the addon is applied, none once it is deleted.
      const items = state.nodeLocalDns ? containers.map((c) => pod(`node-local-dns-${topoOf(c)}`, 'kube-system', c, placeholder(`${topoOf(c)} InternalIP`))) : [];
      return ok(JSON.stringify({ items }));
    }
    if (hasArgs(argv, 'k8s-app=kube-dns')) {
      const r = state.rollouts;
      return ok(JSON.stringify({
        items: topology.dns.replicas.map((n) =>
          pod(r ? `coredns-${n}-r${r}` : `coredns-${n}`, 'kube-system', containers[topology.nodes.findIndex((x) => x.name === n)]!, placeholder(`coredns on ${n} IP${r ? ` after rollout ${r}` : ''}`)),
        ),
      }));
    }
    if (hasArgs(argv, 'vxchaos.io/role=dead-upstream')) return ok(JSON.stringify({ items: [pod('vxchaos-dead-upstream', 'default', containers[0]!, DEAD_UPSTREAM_IP)] }));
    if (hasArgs(argv, 'app=flannel')) {
      const nodeName = argv.find((a) => a.startsWith('spec.nodeName='))?.slice('spec.nodeName='.length) ?? '';
      return ok(JSON.stringify({ items: [pod(`kube-flannel-ds-${topoOf(nodeName)}`, 'kube-flannel', nodeName, placeholder(`${topoOf(nodeName)} InternalIP`))] }));
    }
    const podIndex = argv.indexOf('pod');
    if (podIndex >= 0 && argv[podIndex - 1] === 'get') {
      const name = argv[podIndex + 1] ?? '';
      // The upstream DNS pod is on the host network of the first node: its address is that node's.
      if (name === UPSTREAM_DNS) return ok(JSON.stringify(pod(name, 'default', containers[0]!, PLAN_UPSTREAM_DNS_IP)));
      return ok(JSON.stringify(pod(name, 'default', containers[topology.nodes.findIndex((n) => n.name === topology.clients.node)]!, placeholder(`${name} IP`))));
    }
    return ok('{"items":[]}');
  };
}

/** kubelet's resolv.conf for a ClusterFirst pod (dnsPolicy default) in this namespace. */
function clusterFirstResolvConf(topology: Topology, namespace: string): string {
  const d = topology.dns.domain;
  return `search ${namespace}.svc.${d} svc.${d} ${d}\nnameserver ${topology.dns.clusterIP}\noptions ndots:5\n`;
}

/** What fetching a pin does, as plan notes: the URL, the hash it must have, where verified copies go. */
function fetchNotes(pin: ManifestPin): string[] {
  return [
    `fetch ${pin.url}`,
    `verify sha256 ${pin.sha256} (a mismatch stops the run and applies nothing; verified copies are cached by hash in $VXCHAOS_CACHE_DIR or ~/.cache/vxchaos/manifests)`,
    `images it references (by tag): ${pin.images.join(' ')}`,
  ];
}

/** The net-conf.json keys renderFlannelManifest sets, as one line. */
export function flannelRenderNote(topology: Topology): string {
  const n = flannelNetConf(topology);
  return (
    `render: ConfigMap kube-flannel-cfg, net-conf.json: Network=${n.Network}, Backend.Type=${n.Backend.Type}, ` +
    `Backend.VNI=${n.Backend.VNI}, Backend.Port=${n.Backend.Port}; everything else as upstream ships it`
  );
}

/** The placeholders nodeLocalDnsManifest fills, as one line. */
export function nodeLocalDnsRenderNote(topology: Topology): string {
  const subs = nodeLocalDnsSubstitutions(topology).map(([p, v]) => `${p}=${v}`).join(', ');
  return (
    `render: ${subs}, ${UPSTREAM_SERVERS_PILLAR}=the upstream DNS pod's address; ` +
    'node-cache fills __PILLAR__CLUSTER__DNS__ itself at start'
  );
}

/**
 * Manifests for a plan: nothing is downloaded. Each call notes the URL, the sha256 and the substitutions,
 * and returns a <placeholder> that stands for the rendered text as the commands' stdin.
 */
function planManifests(note: (text: string) => void): KindManifests {
  return {
    flannel: async (topology, version) => {
      const pin = flannelPin(version);
      for (const n of [...fetchNotes(pin), flannelRenderNote(topology)]) note(n);
      return placeholder(`${pin.name}: the verified download with net-conf.json rendered as noted`);
    },
    nodeLocalDns: async (topology) => {
      for (const n of [...fetchNotes(NODE_LOCAL_DNS_PIN), nodeLocalDnsRenderNote(topology)]) note(n);
      return placeholder(`${NODE_LOCAL_DNS_PIN.name}: the verified download with its placeholders filled as noted`);
    },
  };
}

function shellQuote(s: string): string {
  return /^[A-Za-z0-9_@%+=:,./~-]+$/.test(s) ? s : `'${s.replace(/'/g, `'\\''`)}'`;
}

/** Paths under the checkout are shown relative to it and the home directory as ~: the plan reads the same everywhere. */
function display(s: string): string {
  if (s.startsWith(ROOT)) return relative(ROOT, s) || '.';
  const home = homedir();
  return home && home !== '/' && s.startsWith(`${home}/`) ? `~${s.slice(home.length)}` : s;
}

function renderEntries(entries: readonly PlanEntry[], header: string[]): string {
  const out = [...header.map((h) => `# ${h}`), ''];
  let section = '';
  let n = 0;
  for (const e of entries) {
    if (e.section !== section) {
      section = e.section;
      out.push('', `## ${++n}. ${section}`);
    }
    if (e.note) out.push(...e.note.split('\n').map((l) => `# ${l}`));
    if (!e.argv) continue;
    const cmd = `$ ${e.argv.map((a) => shellQuote(display(a))).join(' ')}`;
    if (e.input === undefined) {
      out.push(cmd);
    } else {
      out.push(`${cmd} <<'EOF'`, e.input.replace(/\n$/, ''), 'EOF');
    }
  }
  return `${out.join('\n')}\n`;
}

/**
 * The plan of a kind run: a KindProvider whose shell and pod exec record instead of running, and a Progress
 * that heads the recorded commands with each step and cell label. The real runner drives it
 * (`runSuite({ provider, progress, dryRun: true })`), so the plan holds the commands the provider, the faults
 * and the mitigations really issue, in order, with the generated kind config and manifests as their stdin.
 * Upstream manifests are shown as the URL and sha256 they are fetched and checked by; read-backs are
 * <placeholders>.
 */
export function planKind(opts: PlanKindOptions = {}): KindPlan {
  const entries: PlanEntry[] = [];
  let section = 'preflight (run before anything else)';
  const setSection = (s: string) => {
    section = s;
  };
  const state: PlanState = { cluster: kindClusterName('dry-run'), nodeLocalDns: false, corefile: KUBEADM_COREFILE, rollouts: 0 };
  const planned = planReplies(state);
  const reply = (argv: readonly string[]) => opts.reply?.(argv) ?? planned(argv);
  const record = (argv: readonly string[], input: string | undefined) => entries.push({ section, argv: [...argv], ...(input !== undefined ? { input } : {}) });
  // As the real shell and pod exec: a non-zero exit throws unless the caller takes the exit code as data.
  const result = (shown: readonly string[], r: { stdout: string; exitCode: number }, o?: ExecOptions): ExecResult => {
    if (r.exitCode !== 0 && !o?.nothrow) throw new RunError(shown, r.exitCode, r.stdout, '', 'in the dry run');
    return { stdout: r.stdout, stderr: '', exitCode: r.exitCode };
  };
  const shell: Shell = async (argv, o?: ExecOptions): Promise<ExecResult> => {
    record(argv, o?.input);
    if (o?.input?.includes(NODE_LOCAL_DNS_PIN.name)) state.nodeLocalDns = argv.includes('apply');
    const patch = hasArgs(argv, 'patch', 'configmap', 'coredns') ? argv[argv.indexOf('-p') + 1] : undefined;
    if (patch) state.corefile = (JSON.parse(patch) as { data: { Corefile: string } }).data.Corefile;
    if (hasArgs(argv, 'rollout', 'restart', 'deployment/coredns')) state.rollouts++;
    return result(argv, reply(argv), o);
  };
  // A pod's files as the recorded writes left them; a client pod starts with kubelet's ClusterFirst resolv.conf.
  const podFiles = new Map<string, string>();
  const podExec = (kubeconfig: string, context: string): PodExec => async (pod, argv, o) => {
    const shown = kubectlExecArgv(kubeconfig, context, pod, argv, o?.input !== undefined);
    record(shown, o?.input);
    const key = (path: string) => `${pod.namespace}/${pod.name}:${path}`;
    if (argv[0] === 'sh' && argv[2] === 'cat > "$1"' && o?.input !== undefined) podFiles.set(key(argv[4]!), o.input);
    if (argv[0] === 'cat' && argv.length === 2) {
      const found = podFiles.get(key(argv[1]!)) ?? (argv[1] === '/etc/resolv.conf' && state.topology ? clusterFirstResolvConf(state.topology, pod.namespace) : undefined);
      if (found !== undefined) return result(shown, { stdout: found, exitCode: 0 }, o);
    }
    return result(shown, reply(argv), o);
  };
  const k8sVersion = opts.k8sVersion ?? process.env.VXCHAOS_K8S_VERSION;
  const flannelVersion = opts.flannelVersion ?? process.env.VXCHAOS_FLANNEL_VERSION ?? DEFAULT_FLANNEL_VERSION;
  const provider = new KindProvider({
    shell,
    podExec,
    writeFiles: false,
    keep: false,
    which: (tool) => `<${tool} on PATH>`,
    manifests: planManifests((note) => entries.push({ section, note })),
    ...(k8sVersion ? { k8sVersion } : {}),
    flannelVersion,
  });
  for (const t of KIND_TOOLS) entries.push({ section, note: `${t.tool} on PATH, else: install ${t.hint}` });

  let clients: readonly Libc[] = [];
  const up = provider.up.bind(provider);
  // The provider's own steps head their commands, whether or not the runner reports them too.
  provider.up = async (topology: Topology, o: UpOptions): Promise<Cluster> => {
    state.topology = topology;
    state.cluster = kindClusterName(o.runId);
    clients = o.clients;
    const cluster = (await up(topology, {
      ...o,
      onStep: (s, st, ms) => {
        if (st === 'start') setSection(s);
        o.onStep?.(s, st, ms);
      },
    })) as KindCluster;
    const describe = cluster.describe.bind(cluster);
    cluster.describe = () => {
      setSection('facts for the report');
      return describe();
    };
    const down = cluster.down.bind(cluster);
    cluster.down = async (d) => {
      setSection('teardown');
      entries.push({ section, note: `on a failed run first: cluster.collectLogs (kind export logs, each node's tables, pod logs); --keep skips the delete` });
      return down(d);
    };
    return cluster;
  };

  const progress: Progress = {
    step: (name) => setSection(name),
    // A cell's outcome (e.g. skipped, with the reason) under its own label; a step's own "done" says nothing new.
    done: (name) => {
      if (name !== section) entries.push({ section, note: `→ ${name}` });
    },
    info: (msg) => entries.push({ section, note: msg }),
    warn: (msg) => entries.push({ section, note: `warning: ${msg}` }),
  };

  const render = () => {
    const topology = state.topology;
    const header = [
      `vxchaos dry run${opts.suite ? `: suite ${opts.suite}` : ''} on kind${topology ? `, topology ${topology.name} (${topology.nodes.length} nodes)` : ''}, clients ${clients.join(', ') || 'none'}`,
      'nothing below was executed; values a live cluster would return are shown as <placeholders>',
      `addresses the code must parse stand in as documentation addresses: ${PLAN_UPSTREAM_DNS_IP} = the upstream DNS pod (${topology?.nodes[0]?.name ?? 'the first node'}'s address), ${PLAN_DEAD_UPSTREAM_IP} = the dead upstream pod`,
      `kind ${KIND_VERSION}, node image ${nodeImage(provider.k8sVersion).image}`,
      `flannel ${provider.flannelVersion}: ${flannelPin(provider.flannelVersion).url} (sha256 ${flannelPin(provider.flannelVersion).sha256}), net-conf.json rendered from the topology`,
      `NodeLocal DNSCache (nodelocaldns mitigation): ${NODE_LOCAL_DNS_PIN.url} (sha256 ${NODE_LOCAL_DNS_PIN.sha256}), placeholders filled from the topology`,
      ...(topology ? kindNotes(topology).map((n) => `note: ${n}`) : []),
    ];
    return renderEntries(entries, header);
  };
  return { provider, progress, entries, render };
}
