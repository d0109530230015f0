package disk

import (
	"bytes"

	"sigs.k8s.io/kustomize/kyaml/yaml"
)

// seqIndentStyle is kyaml's yaml.DeriveSeqIndentStyle over a document's
// bytes: the same answer, without the copy of the document as a string
// and the slice of its lines that kyaml makes, an eighth of what reading
// a file allocated.
//
// A line whose first "- " has only spaces before it is a sequence item;
// its key line is the nearest line above that is not a comment, with any
// trailing comment cut off. If that key line ends in its only ":", the
// item's indentation against the key's decides: the same is compact, two
// more is wide; anything else, or no such item, says compact.
func seqIndentStyle(text []byte) string {
	for start := 0; start <= len(text); {
		end := bytes.IndexByte(text[start:], '\n')
		if end < 0 {
			end = len(text)
		} else {
			end += start
		}
		line := text[start:end]
		if dash := bytes.Index(line, []byte("- ")); dash >= 0 && isSpaces(line[:dash]) {
			if key, ok := keyLineBefore(text, start); ok {
				keyIndent := len(key) - len(bytes.TrimLeft(key, " "))
				trimmed := bytes.Trim(key, " ")
				if bytes.Count(trimmed, []byte(":")) == 1 && bytes.HasSuffix(trimmed, []byte(":")) {
					switch dash - keyIndent {
					case 0:
						return string(yaml.CompactSequenceStyle)
					case 2:
						return string(yaml.WideSequenceStyle)
					}
				}
			}
		}
		start = end + 1
	}
	return string(yaml.CompactSequenceStyle)
}

// keyLineBefore is the nearest line above the one starting at start that
// is not a comment, cut at its first "#"; ok is false if there is none or
// it is empty once cut.
func keyLineBefore(text []byte, start int) (key []byte, ok bool) {
	for start > 0 {
		end := start - 1 // the newline ending the line above
		start = bytes.LastIndexByte(text[:end], '\n') + 1
		line := text[start:end]
		if bytes.HasPrefix(bytes.Trim(line, " "), []byte("#")) {
			continue
		}
		if i := bytes.IndexByte(line, '#'); i >= 0 {
			line = line[:i]
		}
		return line, len(line) > 0
	}
	return nil, false
}

func isSpaces(b []byte) bool {
	for _, c := range b {
		if c != ' ' {
			return false
		}
	}
	return true
}
