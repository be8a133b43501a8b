// Package version holds kiln's version, recorded in plans, caches and reports.
package version

// Version is kiln's semantic version.
const Version = "0.1.0-dev"
