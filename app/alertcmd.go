package app

import (
	"context"
	"fmt"
	"time"

	"github.com/chwatch/chwatch/alert"
	"github.com/urfave/cli/v2"
)

func (e *env) alertCommand() *cli.Command {
	return &cli.Command{
		Name:  "alert",
		Usage: "check the alert webhook (alert.webhook_url)",
		Subcommands: []*cli.Command{{
			Name:  "test",
			Usage: "post one test alert to alert.webhook_url now",
			Description: `Posts a test message (kind "test", severity "info") to alert.webhook_url, the
way run posts its alerts, and prints the webhook's answer. The URL itself is
never printed: it usually carries a token.
Exit codes: 0 the webhook answered 2xx, 1 it refused or could not be reached,
2 no alert.webhook_url is configured.`,
			Action: func(c *cli.Context) error {
				cfg, err := e.loadConfig(c)
				if err != nil {
					return err
				}
				if cfg.Alert.WebhookURL == "" {
					return usageErr("alert test: alert.webhook_url is not set (set it in the config file or CHWATCH_ALERT_WEBHOOK_URL)")
				}
				a := alert.New(alert.Config{URL: cfg.Alert.WebhookURL})
				ctx, cancel := context.WithTimeout(c.Context, alert.DefaultTimeout+time.Second)
				defer cancel()
				code, err := a.Test(ctx)
				if err != nil {
					return withCode(ExitFailure, fmt.Errorf("alert test: %w (check alert.webhook_url and that this box can reach it)", err))
				}
				if code/100 != 2 {
					return withCode(ExitFailure, fmt.Errorf("alert test: the webhook answered HTTP %d, not 2xx (check alert.webhook_url: a revoked or mistyped hook answers 4xx)", code))
				}
				fmt.Fprintf(e.stdout, "alert test: sent; the webhook answered HTTP %d\n", code)
				return nil
			},
		}},
	}
}
