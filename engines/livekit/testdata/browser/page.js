// A publisher or a viewer of one live stream through @switchboardhq/client
// and its LiveKit engine, as an app would write it. The query says which
// (role=publisher|subscriber|idle, user, room, token, watchdog, hot=1 for the
// engine's hot standby). The test reads window.sb: the stream's state and
// provider, its hot standby, and, on a viewer, the time of every video frame
// presented (requestVideoFrameCallback), through which provider it came, and
// whether that provider was the stream's at the time. Only those frames are
// what the app shows: a viewer with a hot standby also decodes the standby's
// video, which the app keeps hidden.
import { Client } from "@switchboardhq/client";
import { LiveKitEngine } from "@switchboardhq/client/livekit";

const q = new URLSearchParams(location.search);
const role = q.get("role") === "publisher" ? "publisher" : "subscriber";

const frameAt = []; // performance.now() of each presented frame, in order
const frameVia = []; // the provider it came through
const frameShown = []; // whether that provider was the stream's then
const sb = {
  role,
  provider: "",
  state: "",
  states: [],
  error: "",
  published: 0,
  moves: 0,
  connects: [], // { provider, at, joinedMs, readyMs } per connect
  standby: () => "", // the provider of the stream's hot standby, once joined
  // Frames presented through provider after t, shown or not.
  framesVia(provider, t) {
    let n = 0;
    for (let i = frameAt.length - 1; i >= 0 && frameAt[i] > t; i--) if (frameVia[i] === provider) n++;
    return n;
  },
  // The viewer's gap around a fault at t: the longest interval between two
  // shown frames from the last one at or before t to the first one through to
  // after t; null while none came through to.
  gapAround(t, to) {
    const at = [];
    const via = [];
    for (let i = 0; i < frameAt.length; i++) {
      if (!frameShown[i]) continue;
      at.push(frameAt[i]);
      via.push(frameVia[i]);
    }
    let first = -1;
    for (let i = 0; i < at.length; i++) {
      if (at[i] > t && via[i] === to) {
        first = i;
        break;
      }
    }
    if (first < 0) return null;
    let last = first;
    while (last > 0 && at[last] > t) last--;
    let gap = 0;
    for (let i = last + 1; i <= first; i++) gap = Math.max(gap, at[i] - at[i - 1]);
    return { gapMs: gap, firstAfterMs: at[first] - t, lastBeforeMs: at[last] <= t ? t - at[last] : -1 };
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
      frameShown.push(provider === sb.provider);
      if (frameAt.length > 20000) {
        frameAt.splice(0, 10000);
        frameVia.splice(0, 10000);
        frameShown.splice(0, 10000);
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
    const media = await navigator.mediaDevices.getUserMedia({ video: { width: 640, height: 480, frameRate: 30 }, audio: true });
    [camera] = media.getVideoTracks();
    [microphone] = media.getAudioTracks();
  }
  // The engine, wrapped to time each connect: joined (the room is
  // connected) and ready (published, or watching), in ms after it began.
  const lk = new LiveKitEngine({
    hotStandby: q.get("hot") === "1",
    roomOptions: { adaptiveStream: false, dynacast: false },
    onConnected: async (room, a) => {
      const c = sb.connects.findLast((x) => x.provider === a.provider.name);
      if (c) c.joinedMs = Math.round(performance.now() - c.at);
      await (role === "publisher" ? publish(room) : view(room, a.provider.name));
      if (c) c.readyMs = Math.round(performance.now() - c.at);
    },
  });
  const engine = {
    connect: (a, report, signal) => {
      sb.connects.push({ provider: a.provider.name, at: performance.now() });
      if (sb.connects.length > 50) sb.connects.shift();
      return lk.connect(a, report, signal);
    },
    standby: (id, a) => lk.standby(id, a),
  };
  const logs = [];
  const log = (level) => (message, fields) => {
    logs.push(`${Math.round(performance.now())} ${level} ${message} ${JSON.stringify(fields ?? {})}`);
    if (logs.length > 500) logs.shift();
  };
  sb.logs = logs;
  const client = new Client({
    serverUrl: location.origin,
    token: q.get("token"),
    engines: { livekit: engine },
    watchdogMs: Number(q.get("watchdog") || 0) || undefined,
    connectTimeoutMs: 5000,
    // Heartbeats every 5 s renew a standby soon after a provider stops being
    // avoided (30 s after its media failed, unless it recovers sooner).
    heartbeatMs: 5000,
    logger: { info: log("info"), warn: log("warn"), error: log("error") },
  });
  const onState = (s) => {
    sb.state = s.type;
    if (s.type === "live") sb.provider = s.provider;
    if (s.type === "migrated") sb.moves++;
    if (s.type === "failed") sb.error = String(s.error?.message ?? s.error);
    sb.states.push({ ...s, error: s.error ? String(s.error.message) : undefined, at: performance.now() });
    if (sb.states.length > 200) sb.states.shift();
  };
  const stream = await client.start({ room: q.get("room"), userId: q.get("user"), role, onState });
  sb.standby = () => lk.standbyOf(stream.id) ?? "";
  addEventListener("pagehide", () => void client.close());
}

// role=idle: only the modules, for the test's warm-up joins.
if (q.get("role") !== "idle") {
  main().catch((err) => {
    sb.state = "failed";
    sb.error = String(err?.message ?? err);
  });
}
