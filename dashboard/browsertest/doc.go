// Package browsertest drives the dashboard's page in a real headless
// Chromium (through chromedp) to check that it updates live. It is a
// nested module so that the core module does not depend on chromedp; it
// holds tests only. See docs/dashboard.md.
package browsertest
