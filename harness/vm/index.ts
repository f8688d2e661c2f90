/** The `--kernel` microVM: what the CLI and the runner use (see images/guest/README.md). */
export { bootGuest, downGuests, kvmUsable, VM_STATE_DIR, type BootOptions, type Guest, type GuestKernel, type VmResource } from './vm.ts';
export { GuestHost } from './guest-host.ts';
export { DEBIAN_SUITES, listKernels, parseKernelSpec, printKernels, resolveKernel, type CachedKernel, type KernelListing, type KernelSpec } from './kernels.ts';
export { kernelFeatures, KernelUnsupportedError, type KernelFeatures } from './features.ts';
