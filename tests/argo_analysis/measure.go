// measure takes one Argo Rollouts analysis measurement the way the controller does, for the
// tests of deploy/argo-rollouts (tests/test_gates_argo.py). It reads one JSON request on stdin:
//
//	{"provider": "web", "url": "...", "headers": {"Authorization": "..."}, "jsonPath": "{$.verdict}",
//	 "successCondition": "...", "failureCondition": "..."}
//	{"provider": "prometheus", "address": "http://...", "query": "...", "time": "<unix>", ...}
//
// and prints {"phase": "Successful|Failed|Inconclusive|Error", "value": ..., "error": ...}.
//
// What it reproduces of argo-rollouts (metricproviders/webmetric, metricproviders/prometheus,
// utils/evaluate): a web answer outside 2xx is an Error measurement; a JSON body is decoded into
// interface{} and jsonPath picks one value (a string stays a string); a Prometheus instant
// vector becomes []float64 of its samples, a scalar a float64; `result` is bound to that value
// beside asInt, asFloat, isNaN, isInf, isNil and default, in expr's environment; a condition
// that does not compile or run, or is not a bool, is an Error; no condition true is
// Inconclusive, the failure condition wins over the success condition. expr is Debian's
// golang-github-antonmedv-expr-dev, the module Argo used before it became expr-lang/expr.
package main

import (
	"encoding/json"
	"fmt"
	"io"
	"math"
	"net/http"
	"net/url"
	"os"
	"reflect"
	"strconv"
	"strings"
	"time"

	"github.com/antonmedv/expr"
)

type request struct {
	Provider         string            `json:"provider"`
	URL              string            `json:"url"`
	Headers          map[string]string `json:"headers"`
	JSONPath         string            `json:"jsonPath"`
	Address          string            `json:"address"`
	Query            string            `json:"query"`
	Time             string            `json:"time"` // the tests' only addition: data in the past
	SuccessCondition string            `json:"successCondition"`
	FailureCondition string            `json:"failureCondition"`
}

type measurement struct {
	Phase string      `json:"phase"`
	Value interface{} `json:"value"`
	Error string      `json:"error,omitempty"`
}

var client = &http.Client{Timeout: 20 * time.Second}

func main() {
	var req request
	if err := json.NewDecoder(os.Stdin).Decode(&req); err != nil {
		fmt.Fprintln(os.Stderr, "measure: bad request:", err)
		os.Exit(2)
	}
	value, err := fetch(req)
	out := measurement{Phase: "Error", Value: value}
	if err == nil {
		out.Phase, err = assess(value, req.SuccessCondition, req.FailureCondition)
	}
	if err != nil {
		out.Phase, out.Error = "Error", err.Error()
	}
	_ = json.NewEncoder(os.Stdout).Encode(out)
}

func fetch(req request) (interface{}, error) {
	switch req.Provider {
	case "web":
		return fetchWeb(req)
	case "prometheus":
		return fetchPrometheus(req)
	}
	return nil, fmt.Errorf("unknown provider %q", req.Provider)
}

func fetchWeb(req request) (interface{}, error) {
	r, err := http.NewRequest(http.MethodGet, req.URL, nil)
	if err != nil {
		return nil, err
	}
	for key, value := range req.Headers {
		r.Header.Set(key, value)
	}
	body, status, err := get(r)
	if err != nil {
		return nil, err
	}
	if status < 200 || status >= 300 {
		return nil, fmt.Errorf("received non 2xx response code: %v", status)
	}
	var data interface{}
	if json.Unmarshal(body, &data) != nil {
		return string(body), nil // Argo evaluates a body that is not JSON as a string
	}
	return pick(data, req.JSONPath)
}

// pick supports the paths the shipped templates use: {$} and {$.key}.
func pick(data interface{}, path string) (interface{}, error) {
	if path == "" || path == "{$}" {
		return data, nil
	}
	if !strings.HasPrefix(path, "{$.") || !strings.HasSuffix(path, "}") {
		return nil, fmt.Errorf("jsonPath %q: this evaluator reads only {$} and {$.key}", path)
	}
	key := strings.TrimSuffix(strings.TrimPrefix(path, "{$."), "}")
	object, ok := data.(map[string]interface{})
	value, found := object[key]
	if !ok || !found {
		return nil, fmt.Errorf("Could not find JSONPath in body: %s is not found", key)
	}
	return value, nil
}

func fetchPrometheus(req request) (interface{}, error) {
	query := url.Values{"query": {req.Query}}
	if req.Time != "" {
		query.Set("time", req.Time)
	}
	r, err := http.NewRequest(http.MethodGet, req.Address+"/api/v1/query?"+query.Encode(), nil)
	if err != nil {
		return nil, err
	}
	body, status, err := get(r)
	if err != nil {
		return nil, err
	}
	var answer struct {
		Status string `json:"status"`
		Error  string `json:"error"`
		Data   struct {
			ResultType string          `json:"resultType"`
			Result     json.RawMessage `json:"result"`
		} `json:"data"`
	}
	if err := json.Unmarshal(body, &answer); err != nil || answer.Status != "success" {
		return nil, fmt.Errorf("prometheus answered %d: %s", status, answer.Error)
	}
	return samples(answer.Data.ResultType, answer.Data.Result)
}

func samples(kind string, raw json.RawMessage) (interface{}, error) {
	switch kind {
	case "scalar":
		var point [2]interface{}
		if err := json.Unmarshal(raw, &point); err != nil {
			return nil, err
		}
		return number(point[1])
	case "vector":
		var vector []struct {
			Value [2]interface{} `json:"value"`
		}
		if err := json.Unmarshal(raw, &vector); err != nil {
			return nil, err
		}
		values := make([]float64, 0, len(vector))
		for _, sample := range vector {
			v, err := number(sample.Value[1])
			if err != nil {
				return nil, err
			}
			values = append(values, v)
		}
		return values, nil
	}
	return nil, fmt.Errorf("Prometheus metric type not supported")
}

func number(value interface{}) (float64, error) {
	text, ok := value.(string)
	if !ok {
		return 0, fmt.Errorf("sample value %v is not a string", value)
	}
	return strconv.ParseFloat(text, 64)
}

func get(r *http.Request) ([]byte, int, error) {
	response, err := client.Do(r)
	if err != nil {
		return nil, 0, err
	}
	defer response.Body.Close()
	body, err := io.ReadAll(response.Body)
	return body, response.StatusCode, err
}

func assess(result interface{}, success, failure string) (string, error) {
	succeeded, err := holds(result, success, "successCondition")
	if err != nil {
		return "", err
	}
	failed, err := holds(result, failure, "failureCondition")
	if err != nil {
		return "", err
	}
	switch {
	case success == "" && failure == "":
		return "Successful", nil
	case failure == "":
		failed = !succeeded
	case success == "":
		succeeded = !failed
	}
	if failed {
		return "Failed", nil
	}
	if !succeeded {
		return "Inconclusive", nil
	}
	return "Successful", nil
}

func holds(result interface{}, condition, name string) (bool, error) {
	if condition == "" {
		return false, nil
	}
	env := map[string]interface{}{
		"result":  result,
		"asInt":   func(in interface{}) int64 { return int64(asFloat(in)) },
		"asFloat": asFloat,
		"isNaN":   math.IsNaN,
		"isInf":   func(f float64) bool { return math.IsInf(f, 0) },
		"isNil":   func(interface{}) bool { return isNil(result) },
		"default": func(_ interface{}, fallback interface{}) interface{} {
			if isNil(result) {
				return fallback
			}
			return result
		},
	}
	program, err := expr.Compile(condition, expr.Env(env))
	if err != nil {
		return false, fmt.Errorf("could not evaluate %s %q: %v", name, condition, err)
	}
	output, err := expr.Run(program, env)
	if err != nil {
		return false, fmt.Errorf("could not evaluate %s %q: %v", name, condition, err)
	}
	value, ok := output.(bool)
	if !ok {
		return false, fmt.Errorf("expected bool, but got %T", output)
	}
	return value, nil
}

func asFloat(in interface{}) float64 {
	switch v := in.(type) {
	case float64:
		return v
	case int:
		return float64(v)
	case string:
		f, err := strconv.ParseFloat(v, 64)
		if err != nil {
			panic(err)
		}
		return f
	}
	panic(fmt.Sprintf("asFloat() not supported on %T", in))
}

func isNil(in interface{}) bool {
	if in == nil {
		return true
	}
	switch reflect.TypeOf(in).Kind() {
	case reflect.Ptr, reflect.Map, reflect.Slice:
		return reflect.ValueOf(in).IsNil()
	}
	return false
}
