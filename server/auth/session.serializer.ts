import type { SessionView } from './sessions.service';

/** A session as its user sees it listed; `currentTokenId` is the token of the request that asks. */
export const serializeSession = (session: SessionView, currentTokenId: number) => ({
  id: session.id,
  created_at: session.createdAt.toISOString(),
  last_used_at: session.lastUsedAt.toISOString(),
  user_agent: session.userAgent,
  expires_at: session.expiresAt?.toISOString() ?? null,
  current: session.id === currentTokenId,
});
