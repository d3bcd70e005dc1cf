// The program table: which program runs each family. Adding a family adds a row here, its program
// file and tests, and its exporter; nothing else in the service changes.
import type { Family } from '../../config/manifest-schema.js';
import type { ModelPackage } from '../registry.js';
import { autoregressiveProgram } from './autoregressive.js';
import { couplingProgram } from './coupling.js';
import { odeProgram } from './ode.js';
import { planarProgram } from './planar.js';
import type { FlowProgram } from './types.js';

const PROGRAMS: Record<Family, (pkg: ModelPackage) => FlowProgram> = {
  nice: couplingProgram,
  realnvp: couplingProgram,
  glow: couplingProgram,
  maf: (pkg) => autoregressiveProgram(pkg, 'maf'),
  iaf: (pkg) => autoregressiveProgram(pkg, 'iaf'),
  planar: planarProgram,
  ffjord: odeProgram,
};

/** The program of a package's family; throws ProgramError when the package cannot run it. */
export function programFor(pkg: ModelPackage): FlowProgram {
  return PROGRAMS[pkg.manifest.family](pkg);
}

export type { FlowProgram } from './types.js';
