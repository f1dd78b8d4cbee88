// Package docs holds the project's documents. It has no code: its test
// (docs_test.go) checks that the feature catalogue, features.md, lists every
// behaviour ID (F1, B7, ...) that the code, the tests and the documents cite.
package docs
