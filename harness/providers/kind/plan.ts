import { relative } from 'node:path';
import { ROOT, loadSuiteFile, type CellSpec, type Suite } from '../../config/suite.ts';
import { loadTopology, type Topology } from '../../config/topology.ts';
import { recordingShell, type ExecOptions, type Shell } from '../../exec/shell.ts';
import type { ClientPod, Libc } from '../provider.ts';
import { KIND_VERSION, kindClusterName, kindNodeNames, kindNotes, nodeImage, NODE_LABEL } from './config.ts';
import type { PodExec } from './context.ts';
import type { KindManifests } from './fetch-pinned.ts';
import { BACKEND_DATA, DEFAULT_FLANNEL_VERSION, flannelNetConf, flannelPin, PUBLIC_IP } from './flannel.ts';
import { nodeLocalDnsSubstitutions } from './manifests.ts';
import { kubectlExecArgv } from './node.ts';
import { NODE_LOCAL_DNS_SELECTOR } from './nodelocaldns.ts';
import { NODE_LOCAL_DNS_PIN, type ManifestPin } from './pins.ts';
import { KIND_TOOLS, KindProvider, type KindCluster } from './provider.ts';

export interface KindPlanOptions {
  topologyFile: string;
  suiteName: string;
  clients: Libc[];
  k8sVersion?: string;
  flannelVersion?: string;
}

/** What a wired engine may do per cell against the recording cluster, so faults show their real commands. */
export interface KindPlanHooks {
  runCell?: (args: { cluster: KindCluster; suite: Suite; cell: CellSpec; client: ClientPod; topology: Topology }) => Promise<void>;
}

interface Entry {
  step: string;
  argv?: string[];
  input?: string;
  note?: string;
}

export const PLAN_RUN_ID = 'dry-run';

/** Values only a live cluster knows; the plan shows them as <placeholders>, never as measurements. */
function placeholder(what: string): string {
  return `<${what}>`;
}

function hasArgs(argv: readonly string[], ...want: string[]): boolean {
  return want.every((w) => argv.includes(w));
}

/** What the recorded commands changed, so later read-backs answer accordingly. */
interface PlanState {
  /** The NodeLocal DNSCache addon is applied (and not deleted since). */
  nodeLocalDns: boolean;
}

/**
 * Replies that let the provider's own code walk through a plan: the minimum each read-back needs, with
 * placeholders where a live cluster would answer. Nothing here pretends to be a result.
 */
function planReplies(topology: Topology, state: PlanState): (argv: readonly string[]) => string {
  const cluster = kindClusterName(PLAN_RUN_ID);
  const containers = kindNodeNames(cluster, topology.nodes.length);
  const topoOf = (c: string | undefined) => topology.nodes[containers.indexOf(c ?? '')]?.name ?? '?';
  let uid = 0;
  const ready = { phase: 'Running', conditions: [{ type: 'Ready', status: 'True' }] };
  const pod = (name: string, namespace: string, nodeName: string, ip: string) => ({
    metadata: { name, namespace, uid: `uid-${++uid}` },
    spec: { nodeName, containers: [] },
    status: { ...ready, podIP: ip },
  });
  return (argv) => {
    if (argv[0] === 'kind' && argv[1] === 'version') return `kind ${KIND_VERSION} (dry run: not executed)`;
    if (hasArgs(argv, 'CNI_COMMAND=VERSION')) return '{"cniVersion":"1.0.0","supportedVersions":["0.3.1","1.0.0"]}';
    if (argv.some((a) => a.endsWith('vxprobe')) && hasArgs(argv, '-h')) return 'usage: vxprobe';
    if (hasArgs(argv, 'uname', '-r')) return placeholder('kernel');
    if (hasArgs(argv, 'sh', '-c') && argv.some((a) => a.includes('echo $!'))) return '1000';
    if (argv.some((a) => a.endsWith('vxprobe')) && hasArgs(argv, '-c', '1')) return '# vxprobe 1\nL 0 0 0 OK 1\n# done samples=1 wall_us=0\n';
    if (argv[0] !== 'kubectl' || !hasArgs(argv, '-o', 'json')) return '';
    if (hasArgs(argv, 'get', 'nodes')) {
      return JSON.stringify({
        items: topology.nodes.map((n, i) => ({
          metadata: {
            name: containers[i],
            labels: { [NODE_LABEL]: n.name },
            annotations: { [BACKEND_DATA]: JSON.stringify({ VNI: topology.vxlan.vni, VtepMAC: placeholder(`${n.name} VtepMAC`) }), [PUBLIC_IP]: placeholder(`${n.name} InternalIP`) },
          },
          spec: { podCIDR: placeholder(`${n.name} podCIDR`) },
          status: { addresses: [{ type: 'InternalIP', address: placeholder(`${n.name} InternalIP`) }], conditions: ready.conditions },
        })),
      });
    }
    if (hasArgs(argv, NODE_LOCAL_DNS_SELECTOR)) {
      // One Ready node-cache pod per node while the addon is applied, none once it is deleted.
      const items = state.nodeLocalDns ? containers.map((c) => pod(`node-local-dns-${topoOf(c)}`, 'kube-system', c, placeholder(`${topoOf(c)} InternalIP`))) : [];
      return JSON.stringify({ items });
    }
    if (hasArgs(argv, 'k8s-app=kube-dns')) {
      return JSON.stringify({
        items: topology.dns.replicas.map((n) => pod(`coredns-${n}`, 'kube-system', containers[topology.nodes.findIndex((x) => x.name === n)]!, placeholder(`coredns on ${n} IP`))),
      });
    }
    if (hasArgs(argv, 'app=flannel')) {
      const nodeName = argv.find((a) => a.startsWith('spec.nodeName='))?.slice('spec.nodeName='.length) ?? '';
      return JSON.stringify({ items: [pod(`kube-flannel-ds-${topoOf(nodeName)}`, 'kube-flannel', nodeName, placeholder(`${topoOf(nodeName)} InternalIP`))] });
    }
    const podIndex = argv.indexOf('pod');
    if (podIndex >= 0 && argv[podIndex - 1] === 'get') {
      const name = argv[podIndex + 1] ?? '';
      return JSON.stringify(pod(name, 'default', containers[topology.nodes.findIndex((n) => n.name === topology.clients.node)]!, placeholder(`${name} IP`)));
    }
    return '{"items":[]}';
  };
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
  return `render: ${subs}; node-cache fills __PILLAR__CLUSTER__DNS__ and __PILLAR__UPSTREAM__SERVERS__ itself at start`;
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
  return /^[A-Za-z0-9_@%+=:,./-]+$/.test(s) ? s : `'${s.replace(/'/g, `'\\''`)}'`;
}

/** Paths under the checkout are shown relative to it: the plan reads the same on every machine. */
function display(s: string): string {
  return s.startsWith(ROOT) ? relative(ROOT, s) || '.' : s;
}

/** vxprobe's own flags (images/probe/vxprobe.c usage) for the suite's workload. */
function probeArgv(client: ClientPod, suite: Suite): string[] {
  const w = suite.workload;
  return [...client.probe, ...(w.kind === 'connect' ? ['-C'] : []), '-t', String(w.threads), '-d', String(w.durationS), ...(w.fresh ? ['-f'] : []), ...w.targets];
}

function cellTitle(cell: CellSpec, client: Libc): string {
  const params = Object.entries(cell.params).map(([k, v]) => `${k}=${v}`).join(',');
  return `client=${client} fault=${cell.fault}${cell.mode ? ` mode=${cell.mode}` : ''}${params ? ` (${params})` : ''} mitigation=${cell.mitigation} expect=${cell.expect}`;
}

function render(entries: Entry[], header: string[]): string {
  const out = [...header.map((h) => `# ${h}`), ''];
  let step = '';
  let n = 0;
  for (const e of entries) {
    if (e.step !== step) {
      step = e.step;
      out.push('', `## ${++n}. ${step}`);
    }
    if (e.note) out.push(`# ${e.note}`);
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
 * The full plan of `vxchaos suite <name> --provider kind`, produced by running the provider's own code
 * against a recording shell and a recording pod exec: commands in order, with the generated kind config and
 * manifests as their stdin. Nothing is executed or downloaded: upstream manifests are shown as the URL and
 * sha256 they are fetched and checked by, with the substitutions made in them; read-backs are <placeholders>.
 */
export async function kindPlan(opts: KindPlanOptions): Promise<string> {
  return kindPlanWith(opts);
}

export async function kindPlanWith(opts: KindPlanOptions, hooks: KindPlanHooks = {}): Promise<string> {
  const topology = loadTopology(opts.topologyFile);
  const { suite } = loadSuiteFile(opts.suiteName); // interim: the kind helper replaces this planner with the runner
  const entries: Entry[] = [];
  let step = 'preflight (run before anything else)';
  const state: PlanState = { nodeLocalDns: false };
  const reply = planReplies(topology, state);
  const rec = recordingShell(reply);
  const shell: Shell = async (argv, o?: ExecOptions) => {
    entries.push({ step, argv: [...argv], ...(o?.input !== undefined ? { input: o.input } : {}) });
    if (o?.input?.includes(NODE_LOCAL_DNS_PIN.name)) state.nodeLocalDns = argv.includes('apply');
    return rec(argv, o);
  };
  const podExec = (kubeconfig: string, context: string): PodExec => async (pod, argv, o) => {
    entries.push({ step, argv: kubectlExecArgv(kubeconfig, context, pod, argv, o?.input !== undefined), ...(o?.input !== undefined ? { input: o.input } : {}) });
    return { stdout: reply(argv), stderr: '', exitCode: 0 };
  };
  const k8sVersion = opts.k8sVersion ?? process.env.VXCHAOS_K8S_VERSION;
  const flannelVersion = opts.flannelVersion ?? process.env.VXCHAOS_FLANNEL_VERSION ?? DEFAULT_FLANNEL_VERSION;
  const reportDir = `reports/${PLAN_RUN_ID}`;
  const provider = new KindProvider({
    shell,
    podExec,
    writeFiles: false,
    keep: false,
    reportDir,
    which: (tool) => `<${tool} on PATH>`,
    manifests: planManifests((note) => entries.push({ step, note })),
    ...(k8sVersion ? { k8sVersion } : {}),
    flannelVersion,
  });

  for (const t of KIND_TOOLS) entries.push({ step, note: `${t.tool} on PATH, else: install ${t.hint}` });
  await provider.preflight();

  const cluster = (await provider.up(topology, {
    runId: PLAN_RUN_ID,
    clients: opts.clients,
    onStep: (s, state) => {
      if (state === 'start') step = s;
    },
  })) as KindCluster;

  const clients = suite.clients.filter((c) => opts.clients.includes(c));
  const cells = suite.cells.flatMap((cell) => (cell.clients ?? clients).filter((c) => clients.includes(c)).map((client) => ({ cell, client })));
  for (const [i, { cell, client }] of cells.entries()) {
    step = `cell ${i + 1}/${cells.length}: ${cellTitle(cell, client)}`;
    const pod = cluster.clients[client];
    if (!pod) continue;
    if (hooks.runCell) {
      await hooks.runCell({ cluster, suite, cell, client: pod, topology });
      continue;
    }
    if (cell.fault !== 'none') entries.push({ step, note: `fault ${cell.fault}${cell.mode ? ` (${cell.mode})` : ''}: apply, through node.exec / pod.exec / cluster.flannel (commands come from harness/faults when wired: kindPlanWith(…, { runCell }))` });
    if (cell.mitigation !== 'none') entries.push({ step, note: `mitigation ${cell.mitigation}: apply, through the same seam` });
    entries.push({ step, note: `measure: ${suite.workload.durationS} s of ${suite.workload.kind} with ${suite.workload.threads} threads through ${client}` });
    await pod.exec(probeArgv(pod, suite), { timeoutMs: (suite.workload.durationS + 60) * 1000 });
    if (cell.mitigation !== 'none') entries.push({ step, note: `mitigation ${cell.mitigation}: revert` });
    if (cell.fault !== 'none') entries.push({ step, note: `fault ${cell.fault}: revert` });
  }

  step = 'teardown';
  entries.push({ step, note: `on a failed run first: kind export logs ${reportDir}/kind-logs --name ${cluster.name}; --keep skips the delete` });
  await cluster.down();

  const image = nodeImage(provider.k8sVersion);
  const header = [
    `vxchaos dry run: suite ${suite.name} on kind, topology ${topology.name} (${topology.nodes.length} nodes), clients ${clients.join(', ')}`,
    'nothing below was executed; values a live cluster would return are shown as <placeholders>',
    `kind ${KIND_VERSION}, node image ${image.image}`,
    `flannel ${provider.flannelVersion}: ${flannelPin(provider.flannelVersion).url} (sha256 ${flannelPin(provider.flannelVersion).sha256}), net-conf.json rendered from the topology`,
    `NodeLocal DNSCache (nodelocaldns mitigation): ${NODE_LOCAL_DNS_PIN.url} (sha256 ${NODE_LOCAL_DNS_PIN.sha256}), placeholders filled from the topology`,
    ...kindNotes(topology).map((n) => `note: ${n}`),
  ];
  return render(entries, header);
}
