/**
 * A registry of pluggable parts keyed by type name (docs/design.md §5): run configs name a provider or a
 * blueprint by `type`, and the implementation registered under that name runs it.
 */

export class UnknownTypeError extends Error {
  readonly kind: string;
  readonly type: string;
  readonly known: readonly string[];

  constructor(kind: string, type: string, known: readonly string[]) {
    const listed = known.length > 0 ? `known ${kind} types: ${known.join(', ')}` : `no ${kind} types are registered`;
    super(`unknown ${kind} type ${JSON.stringify(type)} (${listed})`);
    this.name = 'UnknownTypeError';
    this.kind = kind;
    this.type = type;
    this.known = known;
  }
}

export class DuplicateTypeError extends Error {
  constructor(kind: string, type: string) {
    super(`a ${kind} of type ${JSON.stringify(type)} is already registered; each type name may be registered once`);
    this.name = 'DuplicateTypeError';
  }
}

export class Registry<T extends { type: string }> {
  /** What the registry holds, for messages: `provider`, `blueprint`. */
  readonly kind: string;
  readonly #byType = new Map<string, T>();
  readonly #decorators: Array<(impl: T) => T> = [];

  constructor(kind: string) {
    this.kind = kind;
  }

  /** Add an implementation; a second one under the same type is refused (it would silently replace the first). */
  register(impl: T): T {
    if (typeof impl.type !== 'string' || impl.type.trim() === '') {
      throw new TypeError(`a ${this.kind} needs a non-empty string \`type\` to be registered`);
    }
    if (this.#byType.has(impl.type)) throw new DuplicateTypeError(this.kind, impl.type);
    this.#byType.set(impl.type, this.#decorators.reduce((wrapped, wrap) => wrap(wrapped), impl));
    return impl;
  }

  /** Wraps every implementation, registered now or later (a worker's metrics around provider calls). */
  decorate(wrap: (impl: T) => T): void {
    this.#decorators.push(wrap);
    for (const [type, impl] of this.#byType) this.#byType.set(type, wrap(impl));
  }

  get(type: string): T {
    const impl = this.#byType.get(type);
    if (impl === undefined) throw new UnknownTypeError(this.kind, type, this.types());
    return impl;
  }

  has(type: string): boolean {
    return this.#byType.has(type);
  }

  /** Registered type names, sorted. */
  types(): string[] {
    return [...this.#byType.keys()].sort();
  }
}
