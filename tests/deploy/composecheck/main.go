// tests/deploy/composecheck — loads a compose file with compose-go, the
// loader behind `docker compose config` (schema validation, interpolation,
// normalization, consistency checks such as depends_on naming a service), and
// prints the resulting project as JSON for tests/deploy/compose_check.py. No
// Docker engine is involved. Exits 1 with the loader's error on an invalid file.
//
//	go run . -f deploy/compose.yaml
package main

import (
	"context"
	"flag"
	"fmt"
	"os"

	"github.com/compose-spec/compose-go/v2/cli"
)

func main() {
	file := flag.String("f", "", "compose file")
	flag.Parse()
	if *file == "" {
		fmt.Fprintln(os.Stderr, "usage: composecheck -f COMPOSE.yaml")
		os.Exit(2)
	}
	opts, err := cli.NewProjectOptions([]string{*file}, cli.WithOsEnv, cli.WithConsistency(true))
	if err != nil {
		fmt.Fprintln(os.Stderr, "composecheck:", err)
		os.Exit(1)
	}
	project, err := opts.LoadProject(context.Background())
	if err != nil {
		fmt.Fprintln(os.Stderr, "composecheck:", err)
		os.Exit(1)
	}
	out, err := project.MarshalJSON()
	if err != nil {
		fmt.Fprintln(os.Stderr, "composecheck:", err)
		os.Exit(1)
	}
	os.Stdout.Write(out)
	fmt.Println()
}
