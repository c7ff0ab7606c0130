// Server problems (RFC 9457 problem+json) turned into sentences a factory user can act on.

export interface ProblemBody {
  type?: string;
  title?: string;
  status?: number;
  code?: string;
  detail?: string;
}

/** A failed API call: the HTTP status, the problem body when there was one, and Retry-After. */
export class ApiError extends Error {
  readonly status: number;
  readonly code: string;
  readonly detail: string;
  readonly retryAfter: number | null;

  constructor(status: number, body: ProblemBody | null, retryAfter: number | null) {
    super(body?.detail ?? body?.title ?? `HTTP ${status}`);
    this.name = 'ApiError';
    this.status = status;
    this.code = body?.code ?? '';
    this.detail = body?.detail ?? '';
    this.retryAfter = retryAfter;
  }
}

/** Thrown when the server cannot be reached at all. */
export class NetworkError extends Error {
  constructor() {
    super('network');
    this.name = 'NetworkError';
  }
}

export async function problemFrom(res: Response): Promise<ApiError> {
  let body: ProblemBody | null = null;
  try {
    const text = await res.text();
    body = text ? (JSON.parse(text) as ProblemBody) : null;
  } catch {
    body = null;
  }
  const ra = res.headers.get('retry-after');
  const retryAfter = ra !== null && /^\d+$/.test(ra.trim()) ? Number(ra.trim()) : null;
  return new ApiError(res.status, body, retryAfter);
}

export function waitText(seconds: number): string {
  if (seconds < 90) return `${seconds} second${seconds === 1 ? '' : 's'}`;
  const minutes = Math.ceil(seconds / 60);
  return `${minutes} minute${minutes === 1 ? '' : 's'}`;
}

function sentence(s: string): string {
  const t = s.trim();
  if (!t) return t;
  const first = t[0].toUpperCase() + t.slice(1);
  return /[.!?]$/.test(first) ? first : `${first}.`;
}

/** Plain words for any error thrown by the API layer. */
export function describe(err: unknown): string {
  if (err instanceof NetworkError) {
    return 'The server cannot be reached. Check the network connection and try again.';
  }
  if (!(err instanceof ApiError)) {
    return 'Something went wrong. Try again.';
  }
  const detail = err.detail ? sentence(err.detail) : '';
  switch (err.status) {
    case 400:
      if (err.code === 'invalid_otp') return 'That code is wrong, expired or already used. Check the latest email or ask for a new code.';
      return detail || 'The request was not understood. Check the form and try again.';
    case 401:
      if (err.code === 'invalid_credentials') return 'The email or password is incorrect.';
      return detail || 'You are not signed in.';
    case 403:
      if (err.code === 'email_not_verified') return 'Your email address is not verified yet. Enter the code we email you to verify it.';
      return 'Your role does not allow this action.';
    case 404:
      return 'Not found. It may have been removed, or it is not one you can see.';
    case 409:
      if (err.code === 'stale_version') {
        return 'Someone else changed this while you were looking at it. The latest version has been loaded; check it and try again.';
      }
      return detail ? `This conflicts with the current state: ${detail}` : 'This conflicts with the current state. Reload and try again.';
    case 413:
      return 'The file is too large (at most 20 MiB).';
    case 422:
      if (err.code === 'weak_password') return `That password is not accepted: ${detail || 'it is too weak.'}`;
      return detail ? `This cannot be saved: ${detail}` : 'This cannot be saved: a value breaks a rule.';
    case 428:
      return 'The version you edited is unknown. Reload and try again.';
    case 429:
      return err.retryAfter !== null
        ? `Too many attempts. Please wait ${waitText(err.retryAfter)} and try again.`
        : 'Too many attempts. Please wait a while and try again.';
    case 503:
      return 'The service is temporarily unavailable. Try again in a moment.';
    default:
      return err.status >= 500 ? 'The server had a problem. Try again in a moment.' : detail || `Request failed (${err.status}).`;
  }
}
