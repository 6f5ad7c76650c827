package main

import (
	"fmt"
	"log"
	"os"
	"strings"
)

// authKeyEnv is the environment variable `tsconnect up` takes its auth key from when
// --auth-key is not given: unlike a command-line argument, it does not show in ps.
const authKeyEnv = "TSCONNECT_AUTH_KEY"

// resolveAuthKey turns the --auth-key value into the key itself: "file:PATH" reads PATH
// (one key, surrounding space trimmed; a file that others may read gets a warning), a
// plain value is the key, and "" falls back to $TSCONNECT_AUTH_KEY, which is then removed
// from this process's environment so that nothing it starts inherits it.
func resolveAuthKey(flagValue string) (string, error) {
	env, inEnv := os.LookupEnv(authKeyEnv)
	os.Unsetenv(authKeyEnv)
	if flagValue == "" {
		if !inEnv {
			return "", nil
		}
		if env = strings.TrimSpace(env); env == "" {
			return "", fmt.Errorf("$%s is set but empty", authKeyEnv)
		}
		return env, nil
	}
	path, isFile := strings.CutPrefix(flagValue, "file:")
	if !isFile {
		return flagValue, nil
	}
	if path == "" {
		return "", fmt.Errorf("--auth-key file: needs a path, e.g. --auth-key file:/etc/tsconnect/authkey")
	}
	st, err := os.Stat(path)
	if err != nil {
		return "", fmt.Errorf("--auth-key file: %w", err)
	}
	if st.IsDir() {
		return "", fmt.Errorf("--auth-key file:%s is a directory, not a key file", path)
	}
	key, err := readSecret(path)
	if err != nil {
		return "", fmt.Errorf("--auth-key file: %w", err)
	}
	if strings.ContainsAny(key, " \t\r\n") {
		return "", fmt.Errorf("--auth-key file:%s holds more than one word: it must hold the key alone", path)
	}
	if st.Mode().Perm()&0o077 != 0 {
		log.Printf("up: warning: auth key file %s is readable by others (mode %#o); chmod 600 it", path, st.Mode().Perm())
	}
	return key, nil
}
