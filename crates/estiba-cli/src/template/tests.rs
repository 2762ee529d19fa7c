//! Data-driven tests: (template, expected output) over one sample row, and (template, Go's
//! error) for templates that must fail. Outputs were checked against Go's text/template
//! through the real docker CLI where the data allows.

use serde_json::{json, Value};

use super::*;

fn data() -> Value {
    json!({
        "Repository": "busybox",
        "Tag": "latest",
        "Size": 1982321,
        "Neg": -42,
        "Float": 1.5,
        "Big": 1000000.0,
        "Empty": "",
        "Zero": 0,
        "Null": null,
        "List": ["a", "b", "c"],
        "Nums": [1, 2, 3],
        "Map": {"b": "2", "a": "1"},
        "Nested": {"Inner": {"Name": "x"}},
        "Labels": {},
        "EmptyList": [],
        "True": true,
        "False": false,
        "Html": "<a&b>",
        "Mixed": [1, "x", null, {"k": [true]}],
    })
}

fn check(cases: &[(&str, &str)]) {
    let data = data();
    for (template, want) in cases {
        let got = render(template, &data).unwrap_or_else(|e| panic!("{template:?} failed: {e}"));
        assert_eq!(got, *want, "template {template:?}");
    }
}

#[test]
fn text_fields_and_dot() {
    check(&[
        ("", ""),
        ("plain text", "plain text"),
        ("{{.Repository}}", "busybox"),
        ("{{.Repository}}:{{.Tag}}", "busybox:latest"),
        ("{{ .Repository }}", "busybox"),
        ("{{.Nested.Inner.Name}}", "x"),
        ("{{.Size}}", "1982321"),
        ("{{.Neg}}", "-42"),
        ("{{.Float}} {{.Big}}", "1.5 1e+06"),
        ("{{.True}} {{.False}}", "true false"),
        ("{{.List}}", "[a b c]"),
        ("{{.Nums}}", "[1 2 3]"),
        ("{{.Map}}", "map[a:1 b:2]"),
        ("{{.Labels}} {{.EmptyList}}", "map[] []"),
        ("{{.Mixed}}", "[1 x <nil> map[k:[true]]]"),
        ("{{.Missing}}", "<no value>"),
        ("{{.Missing.Deeper}}", "<no value>"),
        ("{{.Null}}", "<no value>"),
        ("{{.Nested.Inner}}", "map[Name:x]"),
        ("{{.Map.a}}", "1"),
        ("{{$}}", "map[Big:1e+06 Empty: EmptyList:[] False:false Float:1.5 Html:<a&b> Labels:map[] List:[a b c] Map:map[a:1 b:2] Mixed:[1 x <nil> map[k:[true]]] Neg:-42 Nested:map[Inner:map[Name:x]] Null:<nil> Nums:[1 2 3] Repository:busybox Size:1982321 Tag:latest True:true Zero:0]"),
        ("{{with .Nested}}{{.Inner.Name}}{{end}}", "x"),
        ("{{.Nested.Inner | json}}", "{\"Name\":\"x\"}"),
    ]);
}

#[test]
fn literals() {
    check(&[
        ("{{\"quoted\\t\\\"x\\\"\"}}", "quoted\t\"x\""),
        ("{{`raw \\n`}}", "raw \\n"),
        ("{{3}} {{-3}} {{+3}} {{0x1F}} {{1_000}}", "3 -3 3 31 1000"),
        (
            "{{1.5}} {{1e6}} {{0.00001}} {{100000000000000000000.0}} {{123456.0}}",
            "1.5 1e+06 1e-05 1e+20 123456",
        ),
        (
            "{{1234567.0}} {{0.0001}} {{-2.5e-7}}",
            "1.234567e+06 0.0001 -2.5e-07",
        ),
        ("{{'a'}} {{'\\n'}}", "97 10"),
        ("{{true}} {{false}}", "true false"),
        ("{{\"\\u00e9\\x41\\101\"}}", "éAA"),
    ]);
}

#[test]
fn trimming_and_comments() {
    check(&[
        ("a  {{- .Tag}}", "alatest"),
        ("{{.Tag -}}  \n b", "latestb"),
        ("a \n {{- .Tag -}} \n b", "alatestb"),
        ("{{- .Tag -}}", "latest"),
        ("x{{/* a comment */}}y", "xy"),
        ("x {{- /* trimmed comment */ -}} y", "xy"),
        ("{{-3}}", "-3"),
        ("{{.Tag}}\n{{.Repository}}", "latest\nbusybox"),
        ("{{.Nested.Inner.Name\n}}", "x"),
    ]);
}

#[test]
fn control_structures() {
    check(&[
        ("{{if .True}}yes{{end}}", "yes"),
        ("{{if .False}}yes{{else}}no{{end}}", "no"),
        (
            "{{if .Empty}}a{{else if .Zero}}b{{else if .List}}c{{else}}d{{end}}",
            "c",
        ),
        ("{{if .Null}}a{{else if .Missing}}b{{else}}c{{end}}", "c"),
        (
            "{{if .Labels}}a{{else}}empty{{end}} {{if .EmptyList}}a{{else}}empty{{end}}",
            "empty empty",
        ),
        (
            "{{if and .True .List}}both{{end}}{{if or .False .Zero}}x{{else}}neither{{end}}",
            "bothneither",
        ),
        (
            "{{and .True .Tag}} {{or .Empty .Tag}} {{and .Zero .Tag}} {{or .Empty .Zero}}",
            "latest latest 0 0",
        ),
        ("{{if not .False}}ok{{end}}", "ok"),
        ("{{with .Missing}}x{{else}}none{{end}}", "none"),
        ("{{with .Nested.Inner}}{{.Name}}{{end}}", "x"),
        ("{{with $x := .Tag}}{{$x}}{{.}}{{end}}", "latestlatest"),
        ("{{with .Empty}}a{{else with .Tag}}{{.}}{{end}}", "latest"),
        ("{{range .List}}[{{.}}]{{end}}", "[a][b][c]"),
        (
            "{{range $i, $e := .List}}{{$i}}={{$e}} {{end}}",
            "0=a 1=b 2=c ",
        ),
        ("{{range $e := .List}}{{$e}}{{end}}", "abc"),
        ("{{range $k, $v := .Map}}{{$k}}:{{$v}};{{end}}", "a:1;b:2;"),
        ("{{range .Map}}{{.}}{{end}}", "12"),
        ("{{range .EmptyList}}x{{else}}empty{{end}}", "empty"),
        ("{{range .Missing}}x{{else}}none{{end}}", "none"),
        ("{{range .Null}}x{{end}}", ""),
        ("{{range 3}}{{.}}{{end}}", "012"),
        (
            "{{range .List}}{{if eq . \"b\"}}{{break}}{{end}}{{.}}{{end}}",
            "a",
        ),
        (
            "{{range .List}}{{if eq . \"b\"}}{{continue}}{{end}}{{.}}{{end}}",
            "ac",
        ),
        ("{{range .List}}{{$.Tag}}{{end}}", "latestlatestlatest"),
        (
            "{{range .Nums}}{{range $.List}}{{.}}{{end}}{{.}}|{{end}}",
            "abc1|abc2|abc3|",
        ),
    ]);
}

#[test]
fn variables() {
    check(&[
        ("{{$x := 3}}{{$x}}", "3"),
        ("{{$x := .Tag}}{{$x = \"new\"}}{{$x}}", "new"),
        ("{{$x := 1}}{{if true}}{{$x = 2}}{{end}}{{$x}}", "2"),
        ("{{$x := 1}}{{range .List}}{{$x = .}}{{end}}{{$x}}", "c"),
        ("{{$n := .Nested}}{{$n.Inner.Name}}", "x"),
        ("{{$.Repository}}", "busybox"),
        ("{{$x:=5}}{{$x}}", "5"),
    ]);
}

#[test]
fn functions() {
    check(&[
        ("{{json .List}}", "[\"a\",\"b\",\"c\"]"),
        ("{{json .Html}}", "\"<a&b>\""),
        ("{{json .Missing}} {{json .Null}}", "null null"),
        ("{{json .Map}}", "{\"a\":\"1\",\"b\":\"2\"}"),
        ("{{.List | json}}", "[\"a\",\"b\",\"c\"]"),
        ("{{join .List \", \"}}", "a, b, c"),
        ("{{join .Nums \"+\"}}", "1+2+3"),
        ("{{split \"a:b:c\" \":\"}}", "[a b c]"),
        ("{{index (split \"a:b:c\" \":\") 1}}", "b"),
        ("{{split \"ab\" \"\"}}", "[a b]"),
        ("{{index .List 1}} {{index .Map \"b\"}} {{index .Nested \"Inner\" \"Name\"}}", "b 2 x"),
        ("{{index .Map \"zz\"}}", "<no value>"),
        ("{{(index .Nested \"Inner\").Name}}", "x"),
        ("{{len .List}} {{len .Map}} {{len .Tag}} {{len .Labels}}", "3 2 6 0"),
        ("{{slice .List 1}} {{slice .List 1 2}} {{slice .Tag 0 4}} {{slice .Tag}}", "[b c] [b] late latest"),
        ("{{lower \"AbC\"}} {{upper .Tag}} {{title \"hello wORLD-x_y\"}}", "abc LATEST Hello WORLD-X_y"),
        ("{{.Tag | upper}} {{.Tag | printf \"%s!\"}}", "LATEST latest!"),
        ("{{pad .Tag 2 1}}|{{truncate .Repository 4}}|{{truncate .Tag 99}}", "  latest |busy|latest"),
        ("{{print 1 2 \"a\" \"b\" 3}}", "1 2ab3"),
        ("{{print .Missing .Null}}", "<nil> <nil>"),
        ("{{println \"x\" 1}}", "x 1\n"),
        ("{{eq .Tag \"latest\"}} {{eq .Size 1}} {{eq .Tag \"a\" \"b\" \"latest\"}} {{ne .Zero 0}}", "true false true false"),
        ("{{eq .Null .Missing}} {{eq .Null \"x\"}}", "true false"),
        ("{{lt 1 2}} {{le 2 2}} {{gt \"b\" \"a\"}} {{ge 1.5 2.5}}", "true true true false"),
        ("{{html .Html}} {{urlquery \"a b&c\"}} {{js \"it's <x>\"}}", "&lt;a&amp;b&gt; a+b%26c it\\'s \\u003Cx\\u003E"),
        ("{{len (print .Tag)}}", "6"),
        ("{{index .Tag 1}} {{index \"abc\" 1}}", "97 98"),
        ("{{.Tag | printf \"%s-%s\" \"a\"}}", "a-latest"),
        ("{{.List|len}}", "3"),
        ("{{and 1 \"x\"}} {{or \"\" 0}} {{and 0 \"x\"}}", "x 0 0"),
        ("{{print nil}} {{eq nil nil}}", "<nil> true"),
        ("{{with 0}}a{{else with 1}}b{{.}}{{end}}", "b1"),
        ("{{printf \"%v\" 1.0}} {{printf \"%v\" 2}}", "1 2"),
    ]);
}

#[test]
fn printf_verbs() {
    check(&[
        ("{{printf \"%s|%v|%d|%q\" .Tag .Size .Size .Tag}}", "latest|1982321|1982321|\"latest\""),
        ("{{printf \"%-10s|%10s|%.3s\" .Tag .Tag .Tag}}", "latest    |    latest|lat"),
        ("{{printf \"%5d|%-5d|%05d|%+d|%x|%X|%o|%b|%#x\" 42 42 42 42 255 255 8 5 255}}", "   42|42   |00042|+42|ff|FF|10|101|0xff"),
        ("{{printf \"%5.2f|%.0f|%f|%e|%g|%g\" 3.14159 2.5 1.5 1234.5678 1e6 0.5}}", " 3.14|2|1.500000|1.234568e+03|1e+06|0.5"),
        ("{{printf \"%d\" .Tag}}", "%!d(string=latest)"),
        ("{{printf \"%s\" .Size}}", "%!s(int=1982321)"),
        ("{{printf \"%f\" 3}}", "%!f(int=3)"),
        ("{{printf \"%s %s\" .Tag}}", "latest %!s(MISSING)"),
        ("{{printf \"%s\" .Tag 1}}", "latest%!(EXTRA int=1)"),
        ("{{printf \"%s\" .Null}} {{printf \"%v\" .Missing}}", "%!s(<nil>) <nil>"),
        ("{{printf \"%s\" .List}} {{printf \"%q\" .List}} {{printf \"%d\" .Nums}}", "[a b c] [\"a\" \"b\" \"c\"] [1 2 3]"),
        ("{{printf \"%v\" .Map}} {{printf \"%s\" .Map}}", "map[a:1 b:2] map[a:1 b:2]"),
        ("{{printf \"100%%\"}} {{printf \"%t\" .True}} {{printf \"%c\" 65}} {{printf \"%x\" \"hi\"}}", "100% true A 6869"),
        ("{{printf \"%*d|%-*d|\" 4 7 3 8}}", "   7|8  |"),
        ("{{printf \"%q\" \"a\\\"b\\n\"}}", "\"a\\\"b\\n\""),
        ("{{printf \"%6.2f%%\" 12.345}}", " 12.35%"),
        ("{{printf \"%.2g|%.3g|%G\" 1234.0 0.0001234 1e-7}}", "1.2e+03|0.000123|1E-07"),
    ]);
}

#[test]
fn missing_key_error_mode() {
    let data = data();
    let strict = |t: &str| {
        Template::parse(t)
            .map(|t| t.missing_key_error(true))
            .and_then(|t| t.execute(&data))
            .map_err(|e| e.to_string())
    };
    assert_eq!(strict("{{.Tag}}"), Ok("latest".to_owned()));
    assert_eq!(
        strict("{{.Missing}}"),
        Err(
            "template: :1:2: executing \"\" at <.Missing>: map has no entry for key \"Missing\""
                .to_owned()
        )
    );
    assert_eq!(
        strict("{{.Missing.X}}"),
        Err(
            "template: :1:10: executing \"\" at <.Missing.X>: map has no entry for key \"Missing\""
                .to_owned()
        )
    );
    assert_eq!(strict("{{index .Map \"zz\"}}"), Ok("<no value>".to_owned()));
}

#[test]
fn errors_read_like_go() {
    let data = data();
    let cases: &[(&str, &str)] = &[
        // Parse errors.
        ("{{foo}}", "template: :1: function \"foo\" not defined"),
        ("{{.Tag", "template: :1: unclosed action"),
        ("{{if .Tag}}x", "template: :1: unexpected EOF"),
        ("{{end}}", "template: :1: unexpected {{end}}"),
        ("{{else}}", "template: :1: unexpected {{else}}"),
        ("{{}}", "template: :1: missing value for command"),
        ("{{if}}x{{end}}", "template: :1: missing value for if"),
        ("{{range}}x{{end}}", "template: :1: missing value for range"),
        ("{{$x}}", "template: :1: undefined variable \"$x\""),
        ("{{if true}}{{$y := 1}}{{end}}{{$y}}", "template: :1: undefined variable \"$y\""),
        ("{{\"abc}}", "template: :1: unterminated quoted string"),
        ("{{.Tag !}}", "template: :1: unexpected \"!\" in operand"),
        ("{{.Tag \u{2603}}}", "template: :1: unrecognized character in action: U+2603 '\u{2603}'"),
        ("{{foo \"abc}}", "template: :1: function \"foo\" not defined"),
        ("{{.Tag \"abc}} {{foo}}", "template: :1: unterminated quoted string"),
        ("{{.Tag.}}", "template: :1: unexpected <.> in operand"),
        ("{{\"a\".Tag}}", "template: :1: unexpected . after term \"\\\"a\\\"\""),
        ("{{if 1}}{{else}}{{else}}{{end}}", "template: :1: expected end; found {{else}}"),
        ("{{range .List}}{{else if 1}}{{end}}", "template: :1: unexpected <if> in input"),
        ("{{range $i, $e := .List}}{{end}}{{$i}}", "template: :1: undefined variable \"$i\""),
        ("{{$a, $b := 1}}", "template: :1: too many declarations in command"),
        ("{{break}}", "template: :1: {{break}} outside {{range}}"),
        ("{{.Tag | 3}}", "template: :1: non executable command in pipeline stage 2"),
        ("{{(.Tag}}", "template: :1: unclosed left paren"),
        ("{{.Tag)}}", "template: :1: unexpected right paren"),
        ("{{3x}}", "template: :1: bad number syntax: \"3x\""),
        ("{{x /* c */}}", "template: :1: function \"x\" not defined"),
        ("{{foo", "template: :1: function \"foo\" not defined"),
        ("{{/* c */ x}}", "template: :1: comment ends before closing delimiter"),
        ("{{$a, $b := .List}}", "template: :1: too many declarations in command"),
        ("{{define \"x\"}}{{end}}", "template: :1: {{define}} is not supported"),
        ("line1\n{{if}}", "template: :2: missing value for if"),
        // Execution errors.
        ("{{.Tag.X}}", "template: :1:6: executing \"\" at <.Tag.X>: can't evaluate field X in type interface {}"),
        ("{{.Null.X}}", "template: :1:7: executing \"\" at <.Null.X>: nil pointer evaluating interface {}.X"),
        ("{{index .List 5}}", "template: :1:2: executing \"\" at <index .List 5>: error calling index: index out of range: 5"),
        ("{{.List | join}}", "template: :1:10: executing \"\" at <join>: wrong number of args for join: want 2 got 1"),
        ("{{.Size | .Tag}}", "template: :1:10: executing \"\" at <.Tag>: Tag is not a method but has arguments"),
        ("{{len .Size}}", "template: :1:2: executing \"\" at <len .Size>: error calling len: len of type int"),
        ("{{upper .Size}}", "template: :1:8: executing \"\" at <.Size>: wrong type for value; expected string; got int"),
        ("{{upper 3}}", "template: :1:8: executing \"\" at <3>: expected string; found 3"),
        ("{{pad \"x\" \"a\" 1}}", "template: :1:10: executing \"\" at <\"a\">: expected integer; found \"a\""),
        ("{{join .Size \",\"}}", "template: :1:7: executing \"\" at <.Size>: wrong type for value; expected []string; got int"),
        ("{{upper .Null}}", "template: :1:8: executing \"\" at <.Null>: invalid value; expected string"),
        ("{{index .List \"x\"}}", "template: :1:2: executing \"\" at <index .List \"x\">: error calling index: cannot index slice/array with type string"),
        ("{{index nil 1}}", "template: :1:2: executing \"\" at <index nil 1>: error calling index: index of untyped nil"),
        ("{{slice .List 4}}", "template: :1:2: executing \"\" at <slice .List 4>: error calling slice: index out of range: 4"),
        ("{{not}}", "template: :1:2: executing \"\" at <not>: wrong number of args for not: want 1 got 0"),
        ("{{eq 1}}", "template: :1:2: executing \"\" at <eq 1>: error calling eq: missing argument for comparison"),
        ("{{eq}}", "template: :1:2: executing \"\" at <eq>: wrong number of args for eq: want at least 1 got 0"),
        ("{{eq .List .List}}", "template: :1:2: executing \"\" at <eq .List .List>: error calling eq: non-comparable type [a b c]: []interface {}"),
        ("{{eq 1 1.0}}", "template: :1:2: executing \"\" at <eq 1 1.0>: error calling eq: incompatible types for comparison"),
        ("{{. 1}}", "template: :1:2: executing \"\" at <.>: can't give argument to non-function ."),
        ("{{$ 1}}", "template: :1:2: executing \"\" at <$>: can't give argument to non-function $"),
        ("{{nil}}", "template: :1:2: executing \"\" at <nil>: nil is not a command"),
        ("{{\"x\" 1}}", "template: :1:2: executing \"\" at <\"x\">: can't give argument to non-function \"x\""),
        ("{{$x := 1}}{{$x 2}}", "template: :1:13: executing \"\" at <$x>: can't give argument to non-function $x"),
        ("{{ . | .Tag }}", "template: :1:7: executing \"\" at <.Tag>: Tag is not a method but has arguments"),
        ("{{range $a, $b := 3}}{{end}}", "template: :1:18: executing \"\" at <3>: can't use 3 to iterate over more than one variable"),
        ("{{lt .Tag 1}}", "template: :1:2: executing \"\" at <lt .Tag 1>: error calling lt: incompatible types for comparison"),
        ("{{range .Tag}}{{end}}", "template: :1:8: executing \"\" at <.Tag>: range can't iterate over latest"),
        ("x\n  {{index .Map 1}}", "template: :2:4: executing \"\" at <index .Map 1>: error calling index: value has type int; should be string"),
    ];
    for (template, want) in cases {
        let got = render(template, &data).map_err(|e| e.to_string());
        assert_eq!(got, Err((*want).to_owned()), "template {template:?}");
    }
}

#[test]
fn row_json_escapes_html_like_docker_rows() {
    let row = json!({"Digest": "<none>", "Tag": "a&b"});
    let t = |text: &str, on: bool| {
        Template::parse(text)
            .map(|t| t.row_json_escapes_html(on))
            .and_then(|t| t.execute(&row))
            .unwrap_or_else(|e| panic!("{e}"))
    };
    assert_eq!(
        t("{{json .}}", true),
        "{\"Digest\":\"\\u003cnone\\u003e\",\"Tag\":\"a\\u0026b\"}"
    );
    assert_eq!(
        t("{{json .Digest}} {{. | json | len}}", true),
        "\"<none>\" 46"
    );
    assert_eq!(
        t("{{json .}}", false),
        "{\"Digest\":\"<none>\",\"Tag\":\"a&b\"}"
    );
}

#[test]
fn parse_once_execute_per_row() {
    let t = Template::parse("{{.Repository}}:{{.Tag}}").unwrap_or_else(|e| panic!("{e}"));
    let rows = [
        json!({"Repository": "a", "Tag": "1"}),
        json!({"Repository": "b", "Tag": "2"}),
    ];
    let lines: Vec<String> = rows
        .iter()
        .map(|r| t.execute(r).unwrap_or_else(|e| panic!("{e}")))
        .collect();
    assert_eq!(lines, ["a:1", "b:2"]);
}

#[test]
fn table_prefix_and_escapes() {
    let cases: &[(&str, Option<&str>)] = &[
        ("table {{.ID}}\t{{.Tag}}", Some("{{.ID}}\t{{.Tag}}")),
        ("table", Some("")),
        ("table   {{.ID}}", Some("{{.ID}}")),
        ("{{.ID}}", None),
        (" table {{.ID}}", None),
    ];
    for (format, want) in cases {
        assert_eq!(parse_table(format), *want, "{format:?}");
    }
    assert_eq!(preprocess("{{.A}}\\t{{.B}}\\n"), "{{.A}}\t{{.B}}\n");
    assert_eq!(preprocess("no escapes"), "no escapes");
}

#[test]
fn output_is_bounded() {
    let err = render(
        &format!("{{{{range 100000000}}}}{}{{{{end}}}}", "x".repeat(1000)),
        &Value::Null,
    )
    .map_err(|e| e.to_string());
    assert!(
        matches!(&err, Err(m) if m.contains("template output exceeds")),
        "{err:?}"
    );
}

#[test]
fn range_iterations_are_bounded() {
    let err = render("{{range 99999999999}}{{end}}", &Value::Null).map_err(|e| e.to_string());
    assert_eq!(
        err,
        Err(format!(
            "template: :1:8: executing \"\" at <99999999999>: range exceeds {MAX_RANGE_ITERATIONS} iterations"
        ))
    );
}

#[test]
fn nesting_is_bounded() {
    let deep = "{{if true}}".repeat(MAX_NESTING + 1);
    let err = Template::parse(&deep)
        .map(|_| ())
        .map_err(|e| e.to_string());
    assert_eq!(
        err,
        Err("template: :1: max nesting depth exceeded".to_owned())
    );
    let parens = format!(
        "{{{{{}1{}}}}}",
        "(".repeat(MAX_NESTING + 1),
        ")".repeat(MAX_NESTING + 1)
    );
    assert!(Template::parse(&parens).is_err());
}
