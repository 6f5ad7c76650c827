package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"

	"tsconnect/agent"
)

func init() {
	var sshFlag, acceptRisk string
	register(&command{
		name:  "set",
		usage: "--ssh=true|false [--accept-risk=lose-ssh]",
		short: "change the running agent's settings",
		long: `Changes settings of the running agent (see --socket).

--ssh=false stops serving SSH on overlay port 22 and ends every SSH session; the map then
shows the node without SSH. Run from inside one of those sessions it refuses, since you
would cut yourself off, unless --accept-risk=lose-ssh is given.
--ssh=true serves SSH again (as 'tsconnect up --ssh' does).`,
		flags: func(fs *flag.FlagSet) {
			fs.StringVar(&sshFlag, "ssh", "", "serve SSH on overlay port 22: true or false")
			fs.StringVar(&acceptRisk, "accept-risk", "", `"lose-ssh": allow --ssh=false from inside an SSH session`)
		},
		run: func(ctx context.Context, args []string) error {
			if len(args) > 0 {
				return fmt.Errorf("unexpected arguments %q", args)
			}
			var p agent.Prefs
			switch sshFlag {
			case "true":
				p.SSH = new(true)
			case "false":
				p.SSH = new(false)
			case "":
				return errors.New("nothing to set; try --ssh=true or --ssh=false")
			default:
				return fmt.Errorf("--ssh must be true or false, not %q", sshFlag)
			}
			if acceptRisk != "" && acceptRisk != agent.AcceptRiskLoseSSH {
				return fmt.Errorf("--accept-risk knows only %q", agent.AcceptRiskLoseSSH)
			}
			p.AcceptRisk = acceptRisk
			resp, err := localAPIPost(ctx, "/localapi/v1/prefs", p)
			if err != nil {
				return err
			}
			defer resp.Body.Close()
			var st agent.Status
			if err := json.NewDecoder(resp.Body).Decode(&st); err != nil {
				return err
			}
			fmt.Printf("ssh: %t\n", st.SSH)
			return nil
		},
	})
}
