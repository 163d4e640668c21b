import { createParser, type EventSourceMessage } from 'eventsource-parser';

/** Opens the user's notification stream (fetch, so that the token travels in a header). */
export type StreamOpener = (lastEventId: string | undefined, signal: AbortSignal) => Promise<Response>;

/**
 * Reads a text/event-stream body to its end, handing each event to `onEvent` and waiting for it
 * before the next (eventsource-parser does the parsing); `onRetry` gets the server's reconnect hint.
 * A failing `onEvent` ends the reading and closes the stream.
 */
export async function readEvents(
  body: ReadableStream<Uint8Array>,
  onEvent: (event: EventSourceMessage) => Promise<void>,
  onRetry: (ms: number) => void,
): Promise<void> {
  const parsed: EventSourceMessage[] = [];
  const parser = createParser({ onEvent: (event) => parsed.push(event), onRetry });
  // A reader rather than `for await`: browsers have not all made streams async-iterable.
  const reader = body.getReader();
  const decoder = new TextDecoder();
  try {
    for (;;) {
      const { done, value } = await reader.read();
      if (done) return;
      parser.feed(decoder.decode(value, { stream: true }));
      while (parsed.length > 0) await onEvent(parsed.shift()!);
    }
  } catch (error) {
    await reader.cancel().catch(() => {});
    throw error;
  }
}
