// Generates ../runner-env.tsv: copy this folder to ../shared/tools/runnercheck/cmd/envtable and run
// `go run ./cmd/envtable` there (GOFLAGS=-mod=mod GOPROXY=off), then filter as the TSV header says.
// Prints, for every field of common.RunnerConfig that `register` fills from an env var, the TOML
// path, the env var, and the value kind (scalar, bool, list, map, pointer-bool).
package main

import (
	"fmt"
	"reflect"
	"strings"

	"runnercheck/runnercfg/common"
)

func tomlName(f reflect.StructField) (string, bool) {
	t := f.Tag.Get("toml")
	if t == "-" {
		return "", false
	}
	name := strings.Split(t, ",")[0]
	if name == "" {
		name = f.Name
	}
	return name, true
}

func kind(t reflect.Type) string {
	switch t.Kind() {
	case reflect.Slice:
		return "list"
	case reflect.Map:
		return "map"
	case reflect.Bool:
		return "bool"
	case reflect.Ptr:
		return kind(t.Elem())
	case reflect.Int, reflect.Int64, reflect.Int32:
		if t.String() == "time.Duration" {
			return "duration"
		}
		return "int"
	default:
		return "string"
	}
}

func walk(t reflect.Type, path string, seen map[reflect.Type]bool) {
	if t.Kind() == reflect.Ptr {
		t = t.Elem()
	}
	if t.Kind() != reflect.Struct || seen[t] {
		return
	}
	seen[t] = true
	defer delete(seen, t)
	for i := 0; i < t.NumField(); i++ {
		f := t.Field(i)
		if f.Anonymous {
			walk(f.Type, path, seen)
			continue
		}
		name, ok := tomlName(f)
		if !ok || !f.IsExported() {
			continue
		}
		p := name
		if path != "" {
			p = path + "." + name
		}
		env := f.Tag.Get("env")
		if env == "" {
			env = f.Tag.Get("ENV")
		}
		if env != "" {
			fmt.Printf("%s\t%s\t%s\n", p, env, kind(f.Type))
		}
		ft := f.Type
		if ft.Kind() == reflect.Ptr {
			ft = ft.Elem()
		}
		if ft.Kind() == reflect.Struct && ft.PkgPath() != "time" {
			walk(ft, p, seen)
		}
	}
}

func main() {
	walk(reflect.TypeOf(common.RunnerConfig{}), "", map[reflect.Type]bool{})
}
