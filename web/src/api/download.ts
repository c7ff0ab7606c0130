import { auth } from '../auth/session';
import { problemFrom } from './problem';
import type { DocumentMeta } from './types';

/** Downloads through the API (bearer token), then opens the file from a blob URL. */
export async function download(d: DocumentMeta): Promise<void> {
  const res = await auth.fetch(`/api/documents/${d.id}/content`, { headers: { accept: '*/*' } });
  if (!res.ok) throw await problemFrom(res);
  const blob = await res.blob();
  const url = URL.createObjectURL(blob);
  const a = document.createElement('a');
  a.href = url;
  a.download = d.name;
  if (d.content_type === 'application/pdf' || d.content_type.startsWith('image/') || d.content_type.startsWith('text/')) {
    a.target = '_blank';
    a.rel = 'noopener';
    a.removeAttribute('download');
  }
  document.body.appendChild(a);
  a.click();
  a.remove();
  window.setTimeout(() => URL.revokeObjectURL(url), 60_000);
}
