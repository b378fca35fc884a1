package app

import (
	"fmt"

	"github.com/chwatch/chwatch/config"
	"github.com/urfave/cli/v2"
)

func (e *env) configCommand() *cli.Command {
	return &cli.Command{
		Name:  "config",
		Usage: "check or show the configuration",
		Subcommands: []*cli.Command{
			{
				Name:  "check",
				Usage: "validate the configuration and the CHWATCH_* environment; exit 2 naming the key and the fix",
				Action: func(c *cli.Context) error {
					cfg, err := e.loadConfig(c)
					if err != nil {
						return err
					}
					// What run only warns about is an error here: a
					// misspelt variable silently sets nothing.
					if err := cfg.CheckEnv(); err != nil {
						return withCode(ExitUsage, fmt.Errorf("configuration: %w", err))
					}
					e.printWarnings(cfg)
					src := cfg.File
					if src == "" {
						src = "no file: defaults and environment"
					}
					fmt.Fprintf(e.stdout, "configuration OK (%s)\n", src)
					return nil
				},
			},
			{
				Name:  "show",
				Usage: "print the effective configuration as TOML, secrets redacted",
				Action: func(c *cli.Context) error {
					cfg, err := e.loadConfigWarn(c)
					if err != nil {
						return err
					}
					if cfg.File != "" {
						fmt.Fprintf(e.stdout, "# from %s, the environment and flags\n", cfg.File)
					} else {
						fmt.Fprintf(e.stdout, "# from defaults, the environment and flags (no file)\n")
					}
					fmt.Fprint(e.stdout, cfg.Show())
					return nil
				},
			},
		},
	}
}

// loadConfigWarn loads the configuration and prints its warnings.
func (e *env) loadConfigWarn(c *cli.Context) (*config.Config, error) {
	cfg, err := e.loadConfig(c)
	if err != nil {
		return nil, err
	}
	e.printWarnings(cfg)
	return cfg, nil
}

func (e *env) printWarnings(cfg *config.Config) {
	for _, w := range cfg.Warnings {
		fmt.Fprintf(e.stderr, "warning: %s\n", w)
	}
}
