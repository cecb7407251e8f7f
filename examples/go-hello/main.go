// A tiny HTTP service on the standard library: `/` answers hello, `/health` 200.
package main

import (
	"fmt"
	"log"
	"net/http"
	"os"
)

const version = "v1"

func main() {
	port := os.Getenv("PORT")
	if port == "" {
		port = "8080"
	}
	http.HandleFunc("/health", func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintln(w, "ok")
	})
	http.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, "hello from go-hello %s\n", version)
	})
	log.Printf("go-hello %s listening on %s", version, port)
	log.Fatal(http.ListenAndServe(":"+port, nil))
}
