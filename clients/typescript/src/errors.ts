// The errors a Reader throws. Test for them with instanceof.

/** Redis could not answer (down, unreachable, not connected, or an error reply). `cause` says why. */
export class UnavailableError extends Error {
  override name = "UnavailableError";
  constructor(what: string, cause?: unknown) {
    super(`${what}: redis unavailable${cause instanceof Error ? `: ${cause.message}` : ""}`, { cause });
  }
}

/** The Reader was closed. */
export class ReaderClosedError extends Error {
  override name = "ReaderClosedError";
  constructor(what: string) {
    super(`${what}: reader closed`);
  }
}

/** A field of an entry hash does not parse: the hash was not written by prismcache, or is damaged. */
export class EntryFormatError extends Error {
  override name = "EntryFormatError";
  constructor(
    readonly instanceId: string,
    readonly field: string,
    reason: string,
  ) {
    super(`instance ${instanceId}: field ${field}: ${reason}`);
  }
}
