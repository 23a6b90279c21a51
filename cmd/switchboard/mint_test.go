package main

import (
	"encoding/hex"
	"testing"

	"github.com/switchboardhq/switchboard/internal/providers/agora"
	"github.com/switchboardhq/switchboard/internal/providers/livekit"
	"github.com/switchboardhq/switchboard/internal/providers/zegocloud"
)

// TestMintAgoraPublishedVector mints Agora's published subscriber vector
// through the CLI and compares the decompressed content byte for byte.
func TestMintAgoraPublishedVector(t *testing.T) {
	out, err := runCLI(t, "token", "agora", "--app-id", "970CA35de60c44645bbae8a215061b33",
		"--app-certificate", "5CFd2fd1755d40ecb72977518be15d3b", "--channel", "7d72365eb983485397e3e3f9d460bdda",
		"--uid", "2882341273", "--role", "subscriber", "--expire", "600", "--issued-at", "1111111", "--salt", "1")
	if err != nil {
		t.Fatal(err)
	}
	tok, err := agora.Parse(lastLine(out))
	if err != nil {
		t.Fatal(err)
	}
	const want = "200016a0b84c5a5e82cbf74fb813d09f59c54bdac9c06120580539ac97578e958b1a2000393730434133356465363063343436343562626165386132313530363162333347f410005802000001000000010001000100010058020000200037643732333635656239383334383533393765336533663964343630626464610a0032383832333431323733"
	if got := hex.EncodeToString(tok.Content()); got != want {
		t.Fatalf("content\n got %s\nwant %s", got, want)
	}
}

// TestMintZegoAndLiveKit mints ZEGOCLOUD and LiveKit tokens through the CLI
// and reads them back, and refuses bad flags.
func TestMintZegoAndLiveKit(t *testing.T) {
	const secret = "0123456789abcdef0123456789abcdef"
	out, err := runCLI(t, "token", "zegocloud", "--app-id", "1234567890", "--server-secret", secret, "--user-id", "alice", "--expire", "60")
	if err != nil {
		t.Fatal(err)
	}
	c, err := zegocloud.Decrypt04(lastLine(out), secret)
	if err != nil || c.AppID != 1234567890 || c.UserID != "alice" || c.Expire-c.CTime != 60 {
		t.Fatalf("zego claims %+v %v", c, err)
	}
	out, err = runCLI(t, "token", "livekit", "--api-key", "key", "--api-secret", "a-secret-of-at-least-thirty-two-chars", "--room", "r1", "--identity", "bob", "--role", "subscriber")
	if err != nil {
		t.Fatal(err)
	}
	cl, err := livekit.VerifyToken(lastLine(out), "key", "a-secret-of-at-least-thirty-two-chars")
	if err != nil || cl.Subject != "bob" || cl.Video == nil || cl.Video.Room != "r1" || cl.Video.CanPublish == nil || *cl.Video.CanPublish {
		t.Fatalf("livekit claims %+v %v", cl, err)
	}
	for _, bad := range [][]string{
		{"token"}, {"token", "twilio"}, {"token", "agora", "--app-id", "x"},
		{"token", "agora", "--app-id", "zz", "--app-certificate", "zz", "--channel", "c", "--uid", "1"},
		{"token", "zegocloud", "--app-id", "1", "--server-secret", "short", "--user-id", "u"},
		{"token", "livekit", "--api-key", "k", "--api-secret", "s", "--room", "r", "--identity", "i", "--role", "host"},
	} {
		if _, err := runCLI(t, bad...); err == nil {
			t.Errorf("%v: accepted", bad)
		}
	}
}
