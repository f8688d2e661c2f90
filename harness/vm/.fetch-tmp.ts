import { fetchDebianKernel } from './kernels.ts';
const suite = process.argv[2] as any;
const t = Date.now();
const k = await fetchDebianKernel(suite, (l) => console.log(l));
console.log(JSON.stringify(k), (Date.now()-t)/1000);
