package importer

import "io"

// SortInSmallRuns makes the import sort in runs of about runBytes, merging
// fanIn at a time: many runs, and merges of merges, from a small file.
func SortInSmallRuns(o *Options, runBytes, fanIn int) {
	o.runBytes, o.fanIn = runBytes, fanIn
}

// CreateRunsWith replaces how the sort creates its run files.
func CreateRunsWith(o *Options, create func(name string) (io.WriteCloser, error)) {
	o.createRun = create
}

// SortDir is where the import of the database at dbPath sorts.
func SortDir(dbPath string) string { return sortDirOf(dbPath) }
