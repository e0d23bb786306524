// useStream keeps a server stream open for as long as the page shows it,
// reconnecting with exponential backoff (1 s doubling to 30 s) when it is
// lost, and says so: a live log that silently stopped would be worse than
// none.
import { useEffect, useState } from "preact/hooks";
import { Code, ConnectError } from "@connectrpc/connect";

export interface StreamState {
  live: boolean;
  // retryAt is when the next attempt starts, while reconnecting.
  retryAt?: number;
  error?: string;
}

const firstBackoff = 1000;
const maxBackoff = 30000;

// open starts the stream: it must call onOpen when the response headers
// arrive (the tail is live from then on) and yield the messages.
export function useStream<T>(
  open: (signal: AbortSignal, onOpen: () => void) => AsyncIterable<T>,
  onMessage: (m: T) => void,
  onOpen: () => void,
  deps: unknown[],
): StreamState {
  const [state, setState] = useState<StreamState>({ live: false });
  useEffect(() => {
    const ctl = new AbortController();
    let backoff = firstBackoff;
    (async () => {
      while (!ctl.signal.aborted) {
        try {
          for await (const m of open(ctl.signal, () => {
            backoff = firstBackoff;
            setState({ live: true });
            onOpen();
          })) {
            onMessage(m);
          }
          // The server ended the stream (it is shutting down): reconnect.
          throw new ConnectError("the server ended the stream", Code.Unavailable);
        } catch (e) {
          if (ctl.signal.aborted) return;
          const err = ConnectError.from(e);
          if (err.code === Code.Unauthenticated) return; // back to sign-in
          const retryAt = Date.now() + backoff;
          setState({ live: false, retryAt, error: err.rawMessage });
          await new Promise((r) => setTimeout(r, backoff));
          backoff = Math.min(backoff * 2, maxBackoff);
        }
      }
    })();
    return () => ctl.abort();
  }, deps);
  return state;
}

export function StreamStatus({ state }: { state: StreamState }) {
  const [, tick] = useState(0);
  useEffect(() => {
    if (state.live) return;
    const id = setInterval(() => tick((n) => n + 1), 500);
    return () => clearInterval(id);
  }, [state.live]);
  if (state.live) {
    return (
      <span class="stream live" id="stream-status">
        ● Live
      </span>
    );
  }
  if (state.retryAt === undefined) {
    return (
      <span class="stream" id="stream-status">
        Connecting…
      </span>
    );
  }
  const secs = Math.max(0, Math.ceil((state.retryAt - Date.now()) / 1000));
  return (
    <span class="stream lost" id="stream-status" title={state.error}>
      Connection lost ({state.error}); reconnecting in {secs}s
    </span>
  );
}
