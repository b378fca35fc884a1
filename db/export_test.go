package db

// SetCheckpointLimit makes c wait past frames instead of
// AutoCheckpointPages, so that a test reaches the limit with a few pages.
func SetCheckpointLimit(c *Checkpointer, frames int64) { c.limit = frames }
