import { printKernels } from './kernels.ts';
printKernels();
