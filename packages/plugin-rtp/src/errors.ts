/** An error as a log line or message shows it: its errno-style `code` when it has one, else its message. */
export function errorText(err: unknown): string {
  if (err && typeof err === 'object' && 'code' in err && typeof (err as { code: unknown }).code === 'string')
    return (err as { code: string }).code;
  return err instanceof Error ? err.message : String(err);
}
