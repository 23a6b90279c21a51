// A publisher or a viewer of one live stream through @switchboardhq/client
// and its LiveKit engine, as an app would write it. The query says which
// (role=publisher|subscriber, user, room, token, watchdog). The test reads
// window.sb: the stream's state and provider, and, on a viewer, the time of
// every video frame presented (requestVideoFrameCallback) and through which
// provider it came.
import { Client } from "@switchboardhq/client";
import { LiveKitEngine } from "@switchboardhq/client/livekit";

const q = new URLSearchParams(location.search);
const role = q.get("role") === "publisher" ? "publisher" : "subscriber";

const frameAt = []; // performance.now() of each presented frame, in order
const frameVia = []; // the provider it came through
const sb = {
  role,
  provider: "",
  state: "",
  states: [],
  error: "",
  published: 0,
  // Frames presented through provider after t.
  framesVia(provider, t) {
    let n = 0;
    for (let i = frameAt.length - 1; i >= 0 && frameAt[i] > t; i--) if (frameVia[i] === provider) n++;
    return n;
  },
  // The time of the last frame presented, or -1.
  lastFrame() {
    return frameAt.length ? frameAt[frameAt.length - 1] : -1;
  },
  // The viewer's gap around a fault at t: the longest interval between two
  // frames presented from a second before t to the first frame through to
  // after t; null while none came through to.
  gapAround(t, to) {
    let first = -1;
    for (let i = 0; i < frameAt.length; i++) {
      if (frameAt[i] > t && frameVia[i] === to) {
        first = i;
        break;
      }
    }
    if (first < 0) return null;
    let gap = 0;
    let lastBefore = -1;
    for (let i = first; i > 0 && frameAt[i] >= t - 1000; i--) {
      gap = Math.max(gap, frameAt[i] - frameAt[i - 1]);
      if (frameAt[i - 1] <= t && lastBefore < 0) lastBefore = frameAt[i - 1];
    }
    return { gapMs: gap, firstAfterMs: frameAt[first] - t, lastBeforeMs: lastBefore < 0 ? -1 : t - lastBefore };
  },
};
window.sb = sb;

let camera;
let microphone;

// Each connection publishes clones of the one camera and microphone, so that
// disconnecting the old room (which stops what it published) leaves the
// devices running for the next one.
async function publish(room) {
  const lp = room.localParticipant;
  await Promise.all([
    lp.publishTrack(camera.clone(), { simulcast: false, videoCodec: "vp8" }),
    lp.publishTrack(microphone.clone(), { dtx: false }),
  ]);
  sb.published++;
}

// Renders each remote video track of the room in a video element of its own
// and records its presented frames.
function view(room, provider) {
  const box = document.getElementById("videos");
  const attach = (track) => {
    if (track.kind !== "video") return;
    const el = document.createElement("video");
    el.muted = true;
    el.autoplay = true;
    el.playsInline = true;
    el.dataset.provider = provider;
    box.append(el);
    track.attach(el);
    const onFrame = (now) => {
      frameAt.push(now);
      frameVia.push(provider);
      if (frameAt.length > 20000) {
        frameAt.splice(0, 10000);
        frameVia.splice(0, 10000);
      }
      if (el.isConnected) el.requestVideoFrameCallback(onFrame);
    };
    el.requestVideoFrameCallback(onFrame);
    el.play().catch(() => undefined);
  };
  const detach = (track) => {
    for (const el of track.detach()) el.remove();
  };
  room.on("trackSubscribed", attach);
  room.on("trackUnsubscribed", detach);
  room.on("disconnected", () => {
    for (const el of box.querySelectorAll("video")) if (el.dataset.provider === provider) el.remove();
  });
  for (const p of room.remoteParticipants.values()) for (const pub of p.trackPublications.values()) if (pub.track) attach(pub.track);
}

async function main() {
  if (role === "publisher") {
    const media = await navigator.mediaDevices.getUserMedia({ video: { width: 320, height: 240, frameRate: 30 }, audio: true });
    [camera] = media.getVideoTracks();
    [microphone] = media.getAudioTracks();
  }
  const engine = new LiveKitEngine({
    roomOptions: { adaptiveStream: false, dynacast: false },
    onConnected: (room, a) => (role === "publisher" ? publish(room) : view(room, a.provider.name)),
  });
  const logs = [];
  const log = (level) => (message, fields) => logs.length < 500 && logs.push(`${level} ${message} ${JSON.stringify(fields ?? {})}`);
  sb.logs = logs;
  const client = new Client({
    serverUrl: location.origin,
    token: q.get("token"),
    engines: { livekit: engine },
    watchdogMs: Number(q.get("watchdog") || 0) || undefined,
    connectTimeoutMs: 5000,
    logger: { info: log("info"), warn: log("warn"), error: log("error") },
  });
  const onState = (s) => {
    sb.state = s.type;
    if (s.type === "live") sb.provider = s.provider;
    if (s.type === "failed") sb.error = String(s.error?.message ?? s.error);
    sb.states.push({ ...s, error: s.error ? String(s.error.message) : undefined, at: performance.now() });
    if (sb.states.length > 200) sb.states.shift();
  };
  await client.start({ room: q.get("room"), userId: q.get("user"), role, onState });
  addEventListener("pagehide", () => void client.close());
}

main().catch((err) => {
  sb.state = "failed";
  sb.error = String(err?.message ?? err);
});
