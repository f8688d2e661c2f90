/** Errors with a stable, machine-readable code; the CLI prints `message` and exits with `exitCode`. */
export class VxError extends Error {
  readonly code: string;
  readonly exitCode: number;
  constructor(code: string, message: string, exitCode = 2) {
    super(message);
    this.name = 'VxError';
    this.code = code;
    this.exitCode = exitCode;
  }
}

/** A command failed: carries the argv, exit code and output so the user can rerun it by hand. */
export class RunError extends VxError {
  readonly argv: readonly string[];
  readonly status: number | null;
  readonly stdout: string;
  readonly stderr: string;
  constructor(argv: readonly string[], status: number | null, stdout: string, stderr: string, why = 'failed') {
    const out = (stderr.trim() || stdout.trim()).split('\n').slice(-8).join('\n');
    super('E_RUN', `command ${why} (exit ${status ?? 'signal'}): ${argv.join(' ')}${out ? `\n${out}` : ''}`, 1);
    this.name = 'RunError';
    this.argv = argv;
    this.status = status;
    this.stdout = stdout;
    this.stderr = stderr;
  }
}

/** Every problem of a config file at once, each with file:line:col where known. */
export class ConfigError extends VxError {
  readonly problems: readonly string[];
  constructor(file: string, problems: readonly string[]) {
    // One line per problem, each starting file:line:col where the place is known (an editor can jump to it).
    const where = (p: string) => (/^\d+:\d+: /.test(p) ? `${file}:${p}` : `${file}: ${p}`);
    super('E_CONFIG', `${file}: ${problems.length} problem${problems.length === 1 ? '' : 's'}:\n${problems.map((p) => `  ${where(p)}`).join('\n')}`);
    this.name = 'ConfigError';
    this.problems = problems;
  }
}

export class UnknownSuiteError extends VxError {
  constructor(name: string, known: readonly string[]) {
    super('E_UNKNOWN_SUITE', `unknown suite "${name}"; known suites: ${known.join(', ')} (see \`vxchaos list\`)`);
  }
}

export class NotRootError extends VxError {
  constructor(what: string) {
    super('E_NOT_ROOT', `${what} needs root (network namespaces, iptables, conntrack); run it as root or with sudo`);
  }
}

export class MissingToolError extends VxError {
  readonly missing: readonly { tool: string; pkg: string }[];
  constructor(missing: readonly { tool: string; pkg: string }[]) {
    const pkgs = [...new Set(missing.map((m) => m.pkg))].join(' ');
    super(
      'E_MISSING_TOOL',
      `missing system tools: ${missing.map((m) => `${m.tool} (${m.pkg})`).join(', ')}\n` +
        `install them with: apt-get update && apt-get install -y ${pkgs}   (or run \`npm run setup\` as root)`,
    );
    this.missing = missing;
  }
}

export class InterruptedError extends VxError {
  constructor(signal: string) {
    super('E_INTERRUPTED', `interrupted by ${signal}`, signal === 'SIGINT' ? 130 : 143);
  }
}
