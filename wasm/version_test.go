package main

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"testing"

	"tsconnect/controlws"
	"tsconnect/key"
)

// TestVersionRefusalReadable: a createIPN against a control server that speaks only newer protocol
// versions fails with code unsupported_version and, as its message, the sentence naming the version
// to run (not "control unreachable"). The real node does the dial; the key fetch says version 99.
func TestVersionRefusalReadable(t *testing.T) {
	kr, _ := json.Marshal(controlws.KeyResponse{Key: key.NewPrivate().Public(), MinVersion: 99, MaxVersion: 99})
	p, err := NewIPN(Config{ControlURL: "http://127.0.0.1:1", AuthKey: "tskey-test"}, func(context.Context, string) ([]byte, error) {
		return kr, nil
	})
	if err != nil {
		t.Fatal(err)
	}
	defer p.Logout(context.Background()) // ends the IPN
	p.Run(Notify{})
	err = p.Login(context.Background())
	want := fmt.Sprintf("this server speaks control protocol version 99, yours up to %d: upgrade tsconnect to a release speaking 99 or later", controlws.Version)
	if errorCode(err) != controlws.CodeUnsupportedVer || errorMessage(err) != want {
		t.Fatalf("Login = %v (code %q, page message %q); want code %s and message %q", err, errorCode(err), errorMessage(err), controlws.CodeUnsupportedVer, want)
	}
	if m := errorMessage(fmt.Errorf("wrapped: %w", &controlws.Error{Code: controlws.CodeUsedKey, Message: "used"})); !strings.HasPrefix(m, "wrapped: ") {
		t.Fatalf("another error's page message lost its context: %q", m)
	}
}
