// argolua runs Argo CD health scripts the way the Argo CD application controller does
// (argo-cd util/lua/lua.go, runLua and ExecuteHealthLua): gopher-lua with only the package,
// base and table libraries (argocd-cm scripts get no string or math unless useOpenLibs is set),
// the resource decoded into tables as the global obj, a one-second limit, and the returned
// table's status checked against Argo CD's health codes.
//
// Input on stdin: a JSON list of {"script": "...", "obj": {...}}. Output: a JSON list of
// {"status": "...", "message": "...", "error": "..."}, one per input.
package main

import (
	"context"
	"encoding/json"
	"os"
	"time"

	lua "github.com/yuin/gopher-lua"
)

type call struct {
	Script string         `json:"script"`
	Obj    map[string]any `json:"obj"`
}

type result struct {
	Status  string `json:"status"`
	Message string `json:"message"`
	Error   string `json:"error,omitempty"`
}

var validStatus = map[string]bool{
	"Unknown": true, "Progressing": true, "Suspended": true, "Healthy": true, "Degraded": true, "Missing": true,
}

// decodeValue is Argo CD's conversion of an unstructured object into Lua values.
func decodeValue(l *lua.LState, value any) lua.LValue {
	switch converted := value.(type) {
	case bool:
		return lua.LBool(converted)
	case float64:
		return lua.LNumber(converted)
	case string:
		return lua.LString(converted)
	case json.Number:
		return lua.LString(converted)
	case []any:
		arr := l.CreateTable(len(converted), 0)
		for _, item := range converted {
			arr.Append(decodeValue(l, item))
		}
		return arr
	case map[string]any:
		tbl := l.CreateTable(0, len(converted))
		for key, item := range converted {
			tbl.RawSetH(lua.LString(key), decodeValue(l, item))
		}
		return tbl
	}
	return lua.LNil
}

func run(c call) result {
	l := lua.NewState(lua.Options{SkipOpenLibs: true})
	defer l.Close()
	for _, pair := range []struct {
		n string
		f lua.LGFunction
	}{
		{lua.LoadLibName, lua.OpenPackage},
		{lua.BaseLibName, lua.OpenBase},
		{lua.TabLibName, lua.OpenTable},
	} {
		if err := l.CallByParam(lua.P{Fn: l.NewFunction(pair.f), NRet: 0, Protect: true}, lua.LString(pair.n)); err != nil {
			return result{Error: err.Error()}
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	l.SetContext(ctx)
	l.SetGlobal("obj", decodeValue(l, c.Obj))
	if err := l.DoString(c.Script); err != nil {
		return result{Error: err.Error()}
	}
	table, ok := l.Get(-1).(*lua.LTable)
	if !ok {
		return result{Error: "expect table output from Lua script, not " + l.Get(-1).Type().String()}
	}
	status, _ := table.RawGetString("status").(lua.LString)
	message, _ := table.RawGetString("message").(lua.LString)
	if !validStatus[string(status)] {
		return result{Status: "Unknown", Message: "Lua returned an invalid health status"}
	}
	return result{Status: string(status), Message: string(message)}
}

func main() {
	var calls []call
	decoder := json.NewDecoder(os.Stdin)
	if err := decoder.Decode(&calls); err != nil {
		os.Stderr.WriteString("bad input: " + err.Error() + "\n")
		os.Exit(2)
	}
	results := make([]result, 0, len(calls))
	for _, c := range calls {
		results = append(results, run(c))
	}
	if err := json.NewEncoder(os.Stdout).Encode(results); err != nil {
		os.Exit(1)
	}
}
