package app

import (
	"github.com/chwatch/chwatch/sim"
	"github.com/urfave/cli/v2"
)

func (e *env) simCommand() *cli.Command {
	return &cli.Command{
		Name:  "sim",
		Usage: "serve the simulated Companies House (stream + REST) on a loopback address",
		Description: `For demos, tests and load. Point chwatch at it with
  CHWATCH_STREAM_URL=http://127.0.0.1:8000 CHWATCH_API_URL=http://127.0.0.1:8000
Everything it sends is a function of --seed. Faults are off unless asked for.
The REST budget (--api-rate-limit per --api-rate-window) belongs to the key:
clients using the same key share it, as on Companies House.`,
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "listen", Value: "127.0.0.1:8000", Usage: "address to serve on (keep it on loopback)"},
			&cli.Int64Flag{Name: "seed", Value: 1, Usage: "seed of everything simulated"},
			&cli.IntFlag{Name: "companies", Value: sim.DefaultCompanies, Usage: "size of the simulated register"},
			&cli.Float64Flag{Name: "strike-off-share", Value: sim.DefaultStrikeOffShare, Usage: "share of companies in strike-off"},
			&cli.IntFlag{Name: "events", Usage: "total events the log will hold (0: unbounded)"},
			&cli.Float64Flag{Name: "rate", Value: 10, Usage: "live events per second (0: as fast as readers take them)"},
			&cli.IntFlag{Name: "backlog", Usage: "events already published at start"},
			&cli.DurationFlag{Name: "heartbeat", Value: sim.DefaultHeartbeat, Usage: "interval of bare-newline heartbeats"},
			&cli.IntFlag{Name: "retention", Usage: "events kept for replay; an older ?timepoint answers 416 (0: all)"},
			&cli.StringFlag{Name: "stream-key", Usage: "required stream key (empty: any)"},
			&cli.StringFlag{Name: "api-key", Usage: "required REST key (empty: any)"},
			&cli.IntFlag{Name: "api-rate-limit", Value: sim.DefaultAPIRateLimit, Usage: "REST requests per window, then 429"},
			&cli.DurationFlag{Name: "api-rate-window", Value: sim.DefaultAPIRateWindow, Usage: "REST budget window"},
			&cli.IntFlag{Name: "cut-every", Usage: "fault: cut the connection mid-line every N event lines"},
			&cli.IntFlag{Name: "stall-every", Usage: "fault: send nothing (no heartbeat) after every N event lines"},
			&cli.DurationFlag{Name: "stall-for", Value: sim.DefaultStallFor, Usage: "fault: length of a stall"},
			&cli.IntFlag{Name: "5xx-every", Usage: "fault: every Nth connect answers 503/502/504"},
			&cli.IntFlag{Name: "429-every", Usage: "fault: every Nth connect answers 429"},
			&cli.IntFlag{Name: "401-every", Usage: "fault: every Nth connect answers 401"},
			&cli.IntFlag{Name: "not-json-every", Usage: "fault: a line that is not JSON after every N event lines"},
			&cli.IntFlag{Name: "oversize-every", Usage: "fault: an oversized copy of the next event after every N event lines"},
			&cli.IntFlag{Name: "replay-every", Usage: "fault: send every Nth event line twice"},
			&cli.IntFlag{Name: "api-5xx-every", Usage: "REST fault: every Nth request begins a burst of gateway errors (503/502/504)"},
			&cli.IntFlag{Name: "api-5xx-burst", Value: 1, Usage: "REST fault: gateway errors per burst"},
			&cli.IntFlag{Name: "api-slow-every", Usage: "REST fault: every Nth request is answered only after --api-slow-for (a timeout)"},
			&cli.DurationFlag{Name: "api-slow-for", Value: sim.DefaultSlowFor, Usage: "REST fault: how long a slow answer takes"},
			&cli.IntFlag{Name: "api-403-every", Usage: "REST fault: every Nth request answers 403 (an IP Companies House dislikes)"},
			&cli.DurationFlag{Name: "api-outage-after", Usage: "REST fault: an outage (every request a gateway error) starts this long after start"},
			&cli.DurationFlag{Name: "api-outage-for", Usage: "REST fault: how long the outage lasts (0: none)"},
			&cli.IntFlag{Name: "api-page-cap", Value: sim.DefaultPageCap, Usage: "largest items_per_page the officer and PSC lists and filing histories grant"},
			&cli.BoolFlag{Name: "api-remaining-header", Usage: "spell the budget header X-Ratelimit-Remaining"},
			&cli.BoolFlag{Name: "api-overlap-pages", Usage: "officer pages after the first repeat the previous page's last item"},
			&cli.IntFlag{Name: "absurd-every", Usage: "fault: after every N event lines, a copy of the last with timepoint 2^63-1"},
			&cli.IntFlag{Name: "trickle-every", Usage: "fault: after every N event lines, send the next one a byte at a time"},
			&cli.DurationFlag{Name: "trickle-delay", Value: sim.DefaultTrickleDelay, Usage: "fault: pause between the bytes of a trickled line"},
		},
		Action: func(c *cli.Context) error {
			cfg := sim.Config{
				Seed: c.Int64("seed"), Companies: c.Int("companies"), StrikeOffShare: c.Float64("strike-off-share"),
				Events: c.Int("events"), Rate: c.Float64("rate"), Backlog: c.Int("backlog"), Heartbeat: c.Duration("heartbeat"),
				Retention: c.Int("retention"), StreamKey: c.String("stream-key"), APIKey: c.String("api-key"),
				APIRateLimit: c.Int("api-rate-limit"), APIRateWindow: c.Duration("api-rate-window"),
				Faults: sim.Faults{
					CutEvery: c.Int("cut-every"), StallEvery: c.Int("stall-every"), StallFor: c.Duration("stall-for"),
					Status5xxEvery: c.Int("5xx-every"), Status429Every: c.Int("429-every"), Status401Every: c.Int("401-every"),
					NotJSONEvery: c.Int("not-json-every"), OversizeEvery: c.Int("oversize-every"), ReplayEvery: c.Int("replay-every"),
					AbsurdEvery: c.Int("absurd-every"), TrickleEvery: c.Int("trickle-every"), TrickleDelay: c.Duration("trickle-delay"),
				},
				API: sim.APIFaults{
					Status5xxEvery: c.Int("api-5xx-every"), Status5xxBurst: c.Int("api-5xx-burst"),
					SlowEvery: c.Int("api-slow-every"), SlowFor: c.Duration("api-slow-for"), Status403Every: c.Int("api-403-every"),
					OutageAfter: c.Duration("api-outage-after"), OutageFor: c.Duration("api-outage-for"),
					PageCap: c.Int("api-page-cap"), RemainingHeader: c.Bool("api-remaining-header"), OverlapPages: c.Bool("api-overlap-pages"),
				},
			}
			log := e.logger(defaultLogConfig())
			if err := sim.Serve(c.Context, c.String("listen"), cfg, log); err != nil {
				return withCode(ExitFailure, err)
			}
			return nil
		},
	}
}
