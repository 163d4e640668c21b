import confusables from 'unicode-confusables';
import { caseFold } from 'unicode-case-folding';

/**
 * What makes two usernames one name. Usernames are shown as they were typed, but they are unique by
 * two derived keys, each a unique column of users:
 * - the key: NFKC and full Unicode case folding (NFKC_Casefold, as UTS #31 suggests for identifiers),
 *   so `alice`, `Alice` and fullwidth `ａｌｉｃｅ` are one name and any of them logs in;
 * - the skeleton: Unicode TR 39's confusable skeleton (confusables.txt, from unicode-confusables),
 *   case folded, so Cyrillic `аlice` or `AIice` cannot pass for `alice`.
 */
export interface UsernameIdentity {
  key: string;
  skeleton: string;
}

export function usernameKey(username: string): string {
  return caseFold(username.normalize('NFKC')).normalize('NFKC');
}

/**
 * TR 39's skeleton (NFD, each character to its prototype, NFD again), folded afterwards so that a
 * capital I, whose prototype is l, still meets the l of another name.
 */
export function usernameSkeleton(username: string): string {
  const prototypes = confusables.rectifyConfusion(username.normalize('NFKC').normalize('NFD'));
  return caseFold(prototypes.normalize('NFD')).normalize('NFD');
}

export const usernameIdentity = (username: string): UsernameIdentity => ({
  key: usernameKey(username),
  skeleton: usernameSkeleton(username),
});
