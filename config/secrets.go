package config

// Secrets returns the values of the secret keys that are set (stream.key,
// api.key, alert.webhook_url), for the log redactor.
func (c *Config) Secrets() []string {
	var out []string
	for _, f := range c.fields() {
		if s, ok := f.v.Interface().(string); ok && f.secret && s != "" {
			out = append(out, s)
		}
	}
	return out
}
