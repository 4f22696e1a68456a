// go-reader reads a multi-document YAML stream the way Helm does and prints, per document, what
// it read as JSON: "go2" = sigs.k8s.io/yaml over go-yaml v2 (Helm 3, kubectl), "go3" =
// gopkg.in/yaml.v3 (kyaml, Helm 4). Documents are split like k8s.io/apimachinery's YAMLReader.
// Usage: go-reader go2|go3 FILE  → a JSON array, one element per non-empty document.
package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"os"

	yaml3 "gopkg.in/yaml.v3"
	"sigs.k8s.io/yaml"
)

func split(data []byte) [][]byte {
	var docs [][]byte
	var cur bytes.Buffer
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Buffer(make([]byte, 1024*1024), 512*1024*1024)
	sc.Split(func(data []byte, atEOF bool) (int, []byte, error) {
		if i := bytes.IndexByte(data, '\n'); i >= 0 {
			return i + 1, data[:i+1], nil
		}
		if atEOF && len(data) > 0 {
			return len(data), data, nil
		}
		return 0, nil, nil
	})
	for sc.Scan() {
		line := sc.Bytes()
		trimmed := bytes.TrimRight(line, "\r\n")
		if bytes.HasPrefix(trimmed, []byte("---")) && (len(trimmed) == 3 || trimmed[3] == ' ' || trimmed[3] == '\t') {
			docs = append(docs, append([]byte(nil), cur.Bytes()...))
			cur.Reset()
			rest := bytes.TrimLeft(trimmed[3:], " \t")
			if len(rest) > 0 && rest[0] != '#' {
				cur.Write(line[3:])
			}
			continue
		}
		cur.Write(line)
	}
	docs = append(docs, cur.Bytes())
	return docs
}

func main() {
	mode, path := os.Args[1], os.Args[2]
	data, err := os.ReadFile(path)
	if err != nil {
		panic(err)
	}
	out := []interface{}{}
	for _, doc := range split(data) {
		var v interface{}
		switch mode {
		case "go2":
			j, err := yaml.YAMLToJSON(doc)
			if err != nil {
				out = append(out, map[string]string{"__error__": err.Error()})
				continue
			}
			if err := json.Unmarshal(j, &v); err != nil {
				out = append(out, map[string]string{"__error__": err.Error()})
				continue
			}
		case "go3":
			if err := yaml3.Unmarshal(doc, &v); err != nil {
				out = append(out, map[string]string{"__error__": err.Error()})
				continue
			}
			v = normalize(v)
		}
		if v == nil {
			continue
		}
		out = append(out, v)
	}
	enc := json.NewEncoder(os.Stdout)
	if err := enc.Encode(out); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
}

// normalize turns yaml.v3's map[string]interface{} trees into JSON-encodable values.
func normalize(v interface{}) interface{} {
	switch t := v.(type) {
	case map[string]interface{}:
		for k, x := range t {
			t[k] = normalize(x)
		}
		return t
	case map[interface{}]interface{}:
		m := map[string]interface{}{}
		for k, x := range t {
			m[fmt.Sprint(k)] = normalize(x)
		}
		return m
	case []interface{}:
		for i, x := range t {
			t[i] = normalize(x)
		}
		return t
	}
	return v
}
