// The Agora and ZEGOCLOUD engines' mappings that need no browser: the uid an
// Agora join uses, the failures that mean a refused token, the statistics
// read into quality samples, and the bounded waits the joins run under.
import assert from "node:assert/strict";
import { test } from "node:test";
import { agoraQuality, agoraRefused, agoraUid } from "../src/agora-map.js";
import { bounded, Stop } from "../src/bounded.js";
import { zegoErrorCode, zegoQuality, zegoRefusedCodes, type ZegoQualityState } from "../src/zego-map.js";

test("agoraUid joins with the uid the control plane minted the token for", () => {
  // As the server's numericUID: canonical decimal uint32 is numeric, 0 and empty are any uid, the rest accounts.
  assert.equal(agoraUid(""), null);
  assert.equal(agoraUid("0"), null);
  assert.equal(agoraUid("7"), 7);
  assert.equal(agoraUid("4294967295"), 4294967295);
  assert.equal(agoraUid("4294967296"), "4294967296");
  assert.equal(agoraUid("007"), "007");
  assert.equal(agoraUid("-1"), "-1");
  assert.equal(agoraUid("alice"), "alice");
  assert.equal(agoraUid("12345678901"), "12345678901");
});

test("agoraRefused tells refused tokens and App IDs from other failed joins", () => {
  // The messages are agora-rtc-sdk-ng's for its access servers' answers.
  for (const message of [
    "AgoraRTCError CAN_NOT_GET_GATEWAY_SERVER: flag: 4096, message: AgoraRTCError CAN_NOT_GET_GATEWAY_SERVER: invalid token, authorized failed",
    "AgoraRTCError CAN_NOT_GET_GATEWAY_SERVER: dynamic key or token timeout",
    "AgoraRTCError CAN_NOT_GET_GATEWAY_SERVER: dynamic key expired",
    "AgoraRTCError CAN_NOT_GET_GATEWAY_SERVER: invalid vendor key, can not find appid",
    "AgoraRTCError CAN_NOT_GET_GATEWAY_SERVER: dynamic use static key",
  ]) {
    assert.equal(agoraRefused({ code: "CAN_NOT_GET_GATEWAY_SERVER", message }), true, message);
  }
  assert.equal(agoraRefused({ code: "TOKEN_EXPIRE", message: "" }), true);
  assert.equal(agoraRefused({ code: "OPERATION_ABORTED", message: "AgoraRTCError OPERATION_ABORTED: cancel token canceled" }), false);
  assert.equal(agoraRefused({ code: "CAN_NOT_GET_GATEWAY_SERVER", message: "no webrtc unilbs service available" }), false);
  assert.equal(agoraRefused({ code: "NETWORK_ERROR", message: "AgoraRTCError NETWORK_ERROR: Network Error" }), false);
  assert.equal(agoraRefused(undefined), false);
});

test("agoraQuality reads an Agora client's statistics", () => {
  const s = agoraQuality(
    {
      rtc: { RTT: 48, SendBitrate: 900_000, RecvBitrate: 1_100_000, SendBytes: 1, RecvBytes: 1 },
      localAudio: { sendPackets: 500, sendPacketsLost: 5, sendJitterMs: 3 },
      localVideo: { sendPackets: 1000, sendPacketsLost: 10, sendJitterMs: 9, sendFrameRate: 24 },
      remoteAudio: { "7": { receivePackets: 480, receivePacketsLost: 20 } },
      remoteVideo: { "7": { receivePackets: 990, receivePacketsLost: 10, receiveFrameRate: 30 } },
    },
    1_000,
  );
  assert.deepEqual(s, { at: 1_000, rttMs: 48, bitrateKbps: 2_000, packetLoss: 45 / (45 + 2970), jitterMs: 9, frameRate: 30 });
  // A subscriber sends nothing: its local tracks' zeros are not read.
  const sub = agoraQuality({ rtc: { RTT: 20, SendBitrate: 0, RecvBitrate: 500_000 }, localAudio: { sendPackets: 0, sendJitterMs: 0 }, localVideo: { sendPackets: 0, sendFrameRate: 0 } }, 2_000);
  assert.deepEqual(sub, { at: 2_000, rttMs: 20, bitrateKbps: 500 });
  assert.deepEqual(agoraQuality({ rtc: {} }, 3_000), { at: 3_000 });
});

test("zegoQuality combines the last quality event of each stream", () => {
  const q: ZegoQualityState = { publish: new Map(), play: new Map() };
  assert.equal(zegoQuality(q), undefined, "no sample before the first event");
  q.publish.set("pub", { at: 1_000, stats: { video: { videoBitrate: 800, videoFPS: 24, videoPacketsLostRate: 0.02 }, audio: { audioBitrate: 40, audioPacketsLostRate: 0 } } });
  assert.deepEqual(zegoQuality(q), { at: 1_000, bitrateKbps: 840, packetLoss: 0.02, frameRate: 24 });
  q.play.set("a", { at: 2_000, stats: { video: { videoBitrate: 1_200, videoFPS: 30, videoPacketsLostRate: 0.01 }, audio: { audioBitrate: 32, audioJitter: 0.012 }, peerToPeerPacketLostRate: 0.04 } });
  q.play.set("b", { at: 1_500, stats: { audio: { audioBitrate: 20, audioPacketsLostRate: 0.001, audioJitter: 0.03 } } });
  assert.deepEqual(zegoQuality(q), { at: 2_000, bitrateKbps: 2_092, packetLoss: 0.04, jitterMs: 30, frameRate: 30 });
  // A rate outside [0, 1] is not a rate.
  q.play.set("c", { at: 2_500, stats: { video: { videoPacketsLostRate: 7 } } });
  assert.equal(zegoQuality(q)?.packetLoss, 0.04);
});

test("zegoErrorCode and zegoRefusedCodes tell refused tokens from other ZEGO failures", () => {
  assert.equal(zegoErrorCode({ code: 1102016, msg: "token error" }), 1102016);
  assert.equal(zegoErrorCode({ errorCode: 1000002, extendedData: "" }), 1000002);
  assert.equal(zegoErrorCode({ code: "1102018" }), 1102018);
  assert.equal(zegoErrorCode(new Error("x")), undefined);
  assert.equal(zegoErrorCode(undefined), undefined);
  for (const c of [1102016, 1102018, 1102020, 1002077, 1002078, 1002082]) assert.ok(zegoRefusedCodes.has(c), String(c));
  for (const c of [1002053, 1000017, 1002050, 1002031]) assert.ok(!zegoRefusedCodes.has(c), String(c));
});

test("bounded ends a wait that never would: on abort, at the timeout, or with the promise", async () => {
  const never = new Promise<never>(() => undefined);
  await assert.rejects(bounded(never, new AbortController().signal, 20), (e: unknown) => e instanceof Stop && e.why === "timeout");
  const ac = new AbortController();
  const p = bounded(never, ac.signal, 60_000);
  ac.abort();
  await assert.rejects(p, (e: unknown) => e instanceof Stop && e.why === "aborted");
  await assert.rejects(bounded(Promise.reject(new Error("late")), AbortSignal.abort(), 60_000), (e: unknown) => e instanceof Stop && e.why === "aborted");
  assert.equal(await bounded(Promise.resolve(5), new AbortController().signal, 60_000), 5);
  await assert.rejects(bounded(Promise.reject(new Error("vendor")), new AbortController().signal, 60_000), /vendor/);
});
