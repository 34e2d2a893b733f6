// script.sl - workload for the SL interpreter test fixture.
// Every section prints deterministic results and folds them into a
// running checksum; the script returns the checksum (exit code = & 0x7f).

let checksum = 17;

fn mix(v) {
    // fold any value into the checksum through its string form
    let s = str(v);
    checksum = (checksum * 31 + hash(s)) & 0xffffffffffff;
    return v;
}

fn section(name) {
    print("");
    print("== " + name + " ==");
}

// ------------------------------------------------------------------
section("arithmetic");
let ints = [7 + 3 * 2, (7 + 3) * 2, 17 / 5, 17 % 5, -17 / 5, -17 % 5, 1 << 40, 0xff & 0x0f,
            0xf0 | 0x0f, 0x55 ^ 0xff, ~0, 9223372036854775807 + 1, -(3 - 10)];
print("ints:", ints);
mix(ints);
let floats = [1.5 + 2.25, 10 / 4.0, 2.0 * 3, 7.5 % 2, 1e3, 1.0 / 3.0, -0.5 * 4];
print("floats:", floats);
mix(floats);
print("compare:", 1 < 2, 2 <= 2, 3 > 4, "abc" < "abd", "b" >= "abc", 1 == 1.0, 2 != 2.5);
print("logic:", true && false, true || false, nil || "default", 0 && "never", !nil, !0);
print("ternary:", 5 > 3 ? "yes" : "no", nil ? 1 : 2);
print("math:", fmt(sqrt(2), 6), fmt(sin(PI / 6), 6), fmt(cos(0), 3), fmt(exp(1), 8),
      fmt(log(100), 6), fmt(atan2(1, 1) * 4, 10), pow(2, 62), fmt(pow(2.0, 0.5), 6));
print("rounding:", floor(3.7), ceil(3.2), floor(-3.5), abs(-42), abs(-2.5), min(4, 2, 8), max([3, 9, 1]));
mix(floor(1000 * sqrt(12345)));
print("conversions:", int("123") + 1, float("2.5") * 2, int(9.99), str(12) + str(3.0), type(1), type(1.0),
      type("s"), type([]), type({}), type(print), type(mix), type(nil));

// ------------------------------------------------------------------
section("recursion");
fn fib(n) {
    if (n < 2) { return n; }
    return fib(n - 1) + fib(n - 2);
}
let fibs = [];
for (i in 15) { push(fibs, fib(i)); }
print("fib 0..14:", fibs);
print("fib(24) =", mix(fib(24)));

fn ackermann(m, n) {
    if (m == 0) { return n + 1; }
    if (n == 0) { return ackermann(m - 1, 1); }
    return ackermann(m - 1, ackermann(m, n - 1));
}
print("ackermann(2, 3) =", mix(ackermann(2, 3)), "ackermann(3, 3) =", mix(ackermann(3, 3)));

fn hanoi(n, from, to, via, moves) {
    if (n == 0) { return moves; }
    hanoi(n - 1, from, via, to, moves);
    push(moves, from + to);
    return hanoi(n - 1, via, to, from, moves);
}
let moves = hanoi(6, "A", "C", "B", []);
print("hanoi(6):", len(moves), "moves, first", slice(moves, 0, 5), "last", moves[-1]);
mix(join(moves, ""));

// ------------------------------------------------------------------
section("sieve");
fn sieve(limit) {
    let is_composite = [];
    for (i in limit + 1) { push(is_composite, false); }
    let primes = [];
    for (let i = 2; i <= limit; i += 1) {
        if (is_composite[i]) { continue; }
        push(primes, i);
        for (let j = i * i; j <= limit; j += i) { is_composite[j] = true; }
    }
    return primes;
}
let primes = sieve(30000);
print("primes below 30000:", len(primes), "last five:", slice(primes, -5));
print("sum of primes:", mix(reduce(primes, fn(a, b) { return a + b; }, 0)));
let twin = 0;
for (let i = 1; i < len(primes); i += 1) {
    if (primes[i] - primes[i - 1] == 2) { twin += 1; }
}
print("twin prime pairs:", mix(twin));

// ------------------------------------------------------------------
section("strings");
let sb = "";
for (i in 40) { sb = sb + chr(65 + (i * 7) % 26); }
print("built:", sb, "len", len(sb));
mix(sb);
let words = split("the quick brown fox jumps over the lazy dog and the quick cat", " ");
print("words:", len(words), "upper:", upper(words[1]), "joined:", join(slice(words, 0, 4), "-"));
let counts = {};
for (w in words) { counts[w] = get(counts, w, 0) + 1; }
let ks = sort(keys(counts));
let parts = [];
for (k in ks) { push(parts, k + "=" + str(counts[k])); }
print("word counts:", join(parts, ", "));
mix(parts);
print("find:", find(sb, "HOV"), find(sb, "zzz"), "replace:", replace("a-b-c-d", "-", "+"),
      "substr:", substr("interpreter", 5), substr("interpreter", 0, 5), substr("interpreter", -4, 2));
print("escapes:", repr("tab\tnewline\nquote\" backslash\\ hex\x41"));
print("repeat:", "ab" * 5, "chars:", split("xyz", ""), "ord:", ord("A"), "index:", "hello"[1], "hello"[-1]);
let pal = fn(s) {
    let clean = lower(replace(s, " ", ""));
    for (let i = 0; i < len(clean) / 2; i += 1) {
        if (clean[i] != clean[len(clean) - 1 - i]) { return false; }
    }
    return true;
};
print("palindromes:", map(["Never odd or even", "not one", "A Santa at NASA", "abc"], pal));
let caesar = fn(s, shift) {
    let out = [];
    for (ch in s) {
        let c = ord(ch);
        if (c >= 97 && c <= 122) { c = 97 + (c - 97 + shift) % 26; }
        push(out, chr(c));
    }
    return join(out);
};
let secret = caesar("attack at dawn", 13);
print("caesar:", secret, "->", caesar(secret, 13));
mix(secret);
print("format:", format("{} + {} = {}", 2, 3, 2 + 3), format("[{}]", [1, {k: "v"}]));

// ------------------------------------------------------------------
section("sorting");
let seed = 12345;
fn rand() {
    seed = (seed * 1103515245 + 12345) % 2147483648;
    return seed;
}
let nums = [];
for (i in 200) { push(nums, rand() % 1000); }
let sorted = sort(copy(nums));
let ok = true;
for (let i = 1; i < len(sorted); i += 1) { if (sorted[i - 1] > sorted[i]) { ok = false; } }
print("default sort ok:", ok, "min", sorted[0], "max", sorted[-1], "median", sorted[100]);
mix(sorted);
let desc = sort(copy(nums), fn(a, b) { return b - a; });
print("descending head:", slice(desc, 0, 8));
mix(desc);
let people = [
    {name: "mallory", age: 41}, {name: "alice", age: 30}, {name: "bob", age: 25},
    {name: "carol", age: 30}, {name: "dave", age: 19}, {name: "eve", age: 41},
    {name: "trent", age: 55}, {name: "peggy", age: 25}
];
sort(people, fn(a, b) {
    if (a.age != b.age) { return a.age - b.age; }
    return a.name < b.name ? -1 : 1;
});
print("by age then name:", join(map(people, fn(p) { return p.name + "(" + str(p.age) + ")"; }), " "));
mix(map(people, fn(p) { return p.name; }));
let by_len = sort(copy(words), fn(a, b) {
    // comparator that itself sorts (nested qsort through the VM)
    let pair = sort([len(a), len(b)]);
    if (len(a) != len(b)) { return len(a) - len(b); }
    return a < b ? -1 : (a == b ? 0 : 1);
});
print("by length:", by_len);
let floats_sorted = sort([3.5, -1.25, 2, 0.5, 10, -7]);
print("mixed numbers:", floats_sorted);
mix(floats_sorted);
print("reverse:", reverse(range(5)), "range:", range(2, 20, 4), range(10, 0, -3));

// ------------------------------------------------------------------
section("maps");
let inventory = {apples: 12, pears: 3, plums: 40};
inventory.kiwis = 7;
inventory["pears"] += 10;
remove(inventory, "plums");
print("inventory:", len(inventory), has(inventory, "plums"), has(inventory, "kiwis"));
let inv_keys = sort(keys(inventory));
for (k in inv_keys) { print("  ", k, inventory[k]); }
mix(inv_keys);
let squares = {};
for (i in 300) { squares[i] = i * i; }
for (i in 150) { remove(squares, i * 2); }
let total = 0;
for (k in squares) { total += squares[k]; }
print("odd squares:", len(squares), "sum", mix(total), "get 299:", squares[299], "get 2:", squares[2]);
let mixed_keys = {};
mixed_keys[1] = "int one";
mixed_keys[1.0] = "float one overrides";
mixed_keys[true] = "bool";
mixed_keys["1"] = "string one";
print("mixed keys:", len(mixed_keys), mixed_keys[1], mixed_keys["1"], mixed_keys[true]);
let nested = {list: [1, 2, {deep: "value"}], map: {x: 1}};
nested.list[2].deep = "changed";
nested.map.y = nested.list[1] * 100;
print("nested:", nested.list[2].deep, nested.map.y, len(nested.map));

// ------------------------------------------------------------------
section("closures");
fn make_counter(start, step) {
    let count = start;
    return {
        next: fn() { count += step; return count; },
        reset: fn() { count = start; return count; },
        peek: fn() { return count; }
    };
}
let c1 = make_counter(0, 1);
let c2 = make_counter(100, -5);
for (i in 5) { c1.next(); c2.next(); }
print("counters:", c1.peek(), c2.peek(), c1.reset(), c1.next());
mix(c2.peek());
let adders = [];
for (i in 5) {
    let captured = i * 10;
    push(adders, fn(x) { return x + captured; });
}
print("adders:", map(adders, fn(f) { return f(1); }));
fn compose(f, g) { return fn(x) { return f(g(x)); }; }
let inc = fn(x) { return x + 1; };
let dbl = fn(x) { return x * 2; };
print("compose:", compose(inc, dbl)(5), compose(dbl, inc)(5), compose(compose(inc, inc), dbl)(10));
fn memoize(f) {
    let cache = {};
    return fn(n) {
        if (has(cache, n)) { return cache[n]; }
        let r = f(n);
        cache[n] = r;
        return r;
    };
}
let slow_calls = 0;
let square = memoize(fn(n) { slow_calls += 1; return n * n; });
let sq_total = 0;
for (i in 50) { sq_total += square(i % 10); }
print("memoized:", sq_total, "underlying calls:", slow_calls);
mix(sq_total + slow_calls);
// a recursive local function captured by a closure
fn outer_fn(n) {
    fn walk(k) {
        if (k == 0) { return 0; }
        return k + walk(k - 1);
    }
    return fn() { return walk(n); };
}
print("local recursion:", outer_fn(100)());
// shared upvalue between two closures, closed after the frame returns
fn pair() {
    let shared = 0;
    let a = fn() { shared += 1; return shared; };
    let b = fn() { shared *= 10; return shared; };
    return [a, b];
}
let p = pair();
p[0](); p[1](); p[0]();
print("shared upvalue:", p[1]());
mix(p[0]());

// ------------------------------------------------------------------
section("objects");
let Shape = {kind: "shape"};
Shape.new = fn(name) { return {__proto: Shape, name: name}; };
Shape.area = fn(self) { return 0; };
Shape.describe = fn(self) {
    return self.name + " (" + self.kind + ") area=" + fmt(self->area(), 2);
};
let Rect = {__proto: Shape, kind: "rect"};
Rect.new = fn(w, h) {
    let r = Shape.new("rect " + str(w) + "x" + str(h));
    r.__proto = Rect;
    r.w = w;
    r.h = h;
    return r;
};
Rect.area = fn(self) { return self.w * self.h; };
let Square = {__proto: Rect, kind: "square"};
Square.new = fn(s) {
    let q = Rect.new(s, s);
    q.__proto = Square;
    q.name = "square " + str(s);
    return q;
};
let Circle = {__proto: Shape, kind: "circle"};
Circle.new = fn(r) {
    let c = Shape.new("circle r=" + str(r));
    c.__proto = Circle;
    c.r = r;
    return c;
};
Circle.area = fn(self) { return PI * self.r * self.r; };
let shapes = [Rect.new(3, 4), Circle.new(1.5), Square.new(5), Shape.new("blob"), Circle.new(2)];
for (s in shapes) { print("  " + s->describe()); }
sort(shapes, fn(a, b) { return a->area() - b->area(); });
print("by area:", map(shapes, fn(s) { return s.name; }));
mix(map(shapes, fn(s) { return fmt(s->area(), 3); }));

// a bank account with validation errors
let Account = {};
Account.new = fn(owner, balance) { return {__proto: Account, owner: owner, balance: balance, log: []}; };
Account.deposit = fn(self, amount) {
    if (amount <= 0) { throw "invalid deposit amount " + str(amount); }
    self.balance += amount;
    push(self.log, "+" + str(amount));
    return self;
};
Account.withdraw = fn(self, amount) {
    if (amount > self.balance) {
        throw {code: 402, message: "insufficient funds", wanted: amount, have: self.balance};
    }
    self.balance -= amount;
    push(self.log, "-" + str(amount));
    return self;
};
let acct = Account.new("alice", 100);
acct->deposit(50)->withdraw(30)->deposit(5);
try { acct->withdraw(1000); } catch (e) { print("error object:", e.code, e.message, e.wanted, e.have); }
try { acct->deposit(-3); } catch (e) { print("error string:", e); }
print("account:", acct.owner, acct.balance, acct.log);
mix(acct.balance);

// a tiny stack machine written in SL, with its own dispatch map
let Machine = {};
Machine.new = fn() { return {__proto: Machine, stack: [], trace: 0}; };
Machine.ops = {
    push: fn(m, arg) { push(m.stack, arg); },
    add: fn(m, arg) { push(m.stack, pop(m.stack) + pop(m.stack)); },
    mul: fn(m, arg) { push(m.stack, pop(m.stack) * pop(m.stack)); },
    dup: fn(m, arg) { let v = pop(m.stack); push(m.stack, v, v); },
    swap: fn(m, arg) { let a = pop(m.stack); let b = pop(m.stack); push(m.stack, a, b); }
};
Machine.run = fn(self, program) {
    for (ins in program) {
        let op = Machine.ops[ins[0]];
        if (op == nil) { throw "unknown instruction " + ins[0]; }
        op(self, len(ins) > 1 ? ins[1] : nil);
        self.trace += 1;
    }
    return self.stack[-1];
};
let vmres = Machine.new()->run([["push", 3], ["push", 4], ["add"], ["dup"], ["mul"], ["push", 2], ["swap"], ["push", 1], ["add"]]);
print("machine:", vmres);
mix(vmres);

// ------------------------------------------------------------------
section("errors");
let errors_caught = 0;
fn risky(kind) {
    if (kind == 0) { return [1, 2, 3][10]; }
    if (kind == 1) { return nil + 1; }
    if (kind == 2) { return {}.missing.field; }
    if (kind == 3) { return undefined_variable_xyz; }
    if (kind == 4) { return 10 / 0; }
    if (kind == 5) { return len(42); }
    if (kind == 6) { return "str" - 1; }
    if (kind == 7) { return risky(); }
    if (kind == 8) { return int("12abc"); }
    if (kind == 9) { error({custom: true, kind: kind}); }
    if (kind == 10) { assert(1 == 2, "math is broken"); }
    if (kind == 11) { let s = "abc"; s[0] = "x"; }
    return "no error";
}
for (k in 13) {
    try {
        let r = risky(k);
        print("  kind", k, "returned", r);
    } catch (e) {
        errors_caught += 1;
        print("  kind", k, "caught:", e);
        mix(e);
    }
}
fn deep(n) { return deep(n + 1) + 1; }
try { deep(0); } catch (e) { print("  recursion:", e); errors_caught += 1; }
// errors crossing native frames: thrown inside a comparator and inside map()
try {
    sort([3, 1, 2], fn(a, b) { if (a == 2 || b == 2) { throw "comparator refused"; } return a - b; });
} catch (e) { print("  from sort:", e); errors_caught += 1; }
try {
    map([1, 2, 3, 4], fn(x) { if (x == 3) { throw "map stopped at " + str(x); } return x; });
} catch (e) { print("  from map:", e); errors_caught += 1; }
// nested try with rethrow, and break/continue/return out of try blocks
fn layered(n) {
    try {
        try {
            if (n > 1) { throw "inner " + str(n); }
            return "clean " + str(n);
        } catch (e) {
            if (n > 2) { throw "rethrown(" + e + ")"; }
            return "handled " + e;
        }
    } catch (e2) {
        return "outer got " + e2;
    }
}
print("  layered:", layered(1), "|", layered(2), "|", layered(3));
let loop_log = [];
for (i in 6) {
    try {
        if (i == 1) { continue; }
        if (i == 4) { break; }
        if (i == 3) { throw i; }
        push(loop_log, i);
    } catch (e) { push(loop_log, "c" + str(e)); }
}
print("  loop with try:", loop_log);
mix(loop_log);
// the handler stack must be clean after all of this
try { throw "final"; } catch (e) { print("  final:", e); }
print("errors caught:", mix(errors_caught));

// ------------------------------------------------------------------
section("eval");
print("eval:", eval("return 6 * 7;"), eval("let evaluated_global = [1, 2, 3]; return len(evaluated_global);"),
      evaluated_global);
try { eval("let broken = ;"); } catch (e) { print("  syntax:", e); }
try { eval("break;"); } catch (e) { print("  compile:", e); }
try { eval("return 1 +* 2;"); } catch (e) { print("  syntax:", e); }
let generated = "let acc = 0; for (let i = 0; i < 10; i += 1) { acc += i * i; } return acc;";
print("generated code:", mix(eval(generated)));

// ------------------------------------------------------------------
section("higher order");
let evens = filter(range(30), fn(x) { return x % 2 == 0; });
let cubes = map(evens, fn(x) { return x * x * x; });
print("evens:", evens);
print("cubes sum:", mix(reduce(cubes, fn(a, b) { return a + b; }, 0)));
print("apply:", apply(fn(a, b, c) { return a * 100 + b * 10 + c; }, [1, 2, 3]), apply(max, [4, 9, 2]));
let pipeline = [fn(x) { return x + 3; }, fn(x) { return x * x; }, fn(x) { return x - 1; }];
print("pipeline:", map(range(5), fn(x) { return reduce(pipeline, fn(acc, f) { return f(acc); }, x); }));

// ------------------------------------------------------------------
section("matrix");
fn matmul(a, b) {
    let n = len(a);
    let m = len(b[0]);
    let k = len(b);
    let out = [];
    for (i in n) {
        let row = [];
        for (j in m) {
            let s = 0;
            for (t in k) { s += a[i][t] * b[t][j]; }
            push(row, s);
        }
        push(out, row);
    }
    return out;
}
let ma = [];
let mb = [];
for (i in 12) {
    let ra = [];
    let rb = [];
    for (j in 12) { push(ra, (i + j) % 7 - 3); push(rb, (i * j) % 5 - 2); }
    push(ma, ra);
    push(mb, rb);
}
let mc = matmul(ma, mb);
let md = matmul(mc, ma);
let trace = 0;
for (i in 12) { trace += md[i][i]; }
print("matrix trace:", mix(trace), "corner:", md[0][0], md[11][11]);

// ------------------------------------------------------------------
section("json");
fn json_encode(v) {
    let t = type(v);
    if (t == "nil") { return "null"; }
    if (t == "bool" || t == "int" || t == "float") { return str(v); }
    if (t == "string") { return repr(v); }
    if (t == "array") { return "[" + join(map(v, json_encode), ",") + "]"; }
    if (t == "map") {
        let parts = [];
        for (k in sort(keys(v))) { push(parts, repr(str(k)) + ":" + json_encode(v[k])); }
        return "{" + join(parts, ",") + "}";
    }
    throw "cannot encode " + t;
}
fn json_decode(text) {
    let pos = 0;
    fn peek() { return pos < len(text) ? text[pos] : ""; }
    fn skip_ws() { while (peek() == " " || peek() == "\n") { pos += 1; } }
    fn expect(ch) {
        if (peek() != ch) { throw "expected " + ch + " at " + str(pos) + " got '" + peek() + "'"; }
        pos += 1;
    }
    fn parse_value() {
        skip_ws();
        let ch = peek();
        if (ch == "{") {
            pos += 1;
            let obj = {};
            skip_ws();
            if (peek() == "}") { pos += 1; return obj; }
            while (true) {
                skip_ws();
                let key = parse_value();
                skip_ws();
                expect(":");
                obj[key] = parse_value();
                skip_ws();
                if (peek() == ",") { pos += 1; continue; }
                expect("}");
                return obj;
            }
        }
        if (ch == "[") {
            pos += 1;
            let arr = [];
            skip_ws();
            if (peek() == "]") { pos += 1; return arr; }
            while (true) {
                push(arr, parse_value());
                skip_ws();
                if (peek() == ",") { pos += 1; continue; }
                expect("]");
                return arr;
            }
        }
        if (ch == "\"") {
            pos += 1;
            let out = [];
            while (peek() != "\"") {
                let c = peek();
                if (c == "") { throw "unterminated string"; }
                if (c == "\\") {
                    pos += 1;
                    let e = peek();
                    if (e == "n") { c = "\n"; } else if (e == "t") { c = "\t"; } else { c = e; }
                }
                push(out, c);
                pos += 1;
            }
            pos += 1;
            return join(out);
        }
        if (substr(text, pos, 4) == "null") { pos += 4; return nil; }
        if (substr(text, pos, 4) == "true") { pos += 4; return true; }
        if (substr(text, pos, 5) == "false") { pos += 5; return false; }
        let start = pos;
        while (find("-+.e0123456789", peek()) >= 0 && peek() != "") { pos += 1; }
        if (start == pos) { throw "unexpected '" + ch + "' at " + str(pos); }
        let lit = substr(text, start, pos - start);
        if (find(lit, ".") >= 0 || find(lit, "e") >= 0) { return float(lit); }
        return int(lit);
    }
    let v = parse_value();
    skip_ws();
    if (pos != len(text)) { throw "trailing characters at " + str(pos); }
    return v;
}
let doc = {
    name: "sl", version: 3, ratio: 0.75, tags: ["vm", "gc", "closures"],
    nested: {empty: [], none: nil, yes: true, no: false, text: "line1\nline2 \"quoted\""},
    matrix: [[1, 2], [3, 4], [5, [6, 7]]]
};
let encoded = json_encode(doc);
print("encoded:", encoded);
let decoded = json_decode(encoded);
let reencoded = json_encode(decoded);
print("round trip equal:", encoded == reencoded, "len", len(encoded));
print("decoded fields:", decoded.nested.text, decoded.matrix[2][1][1], decoded.ratio * 4);
mix(reencoded);
for (bad in ["[1, 2", "{\"a\" 1}", "[1, @]", "\"open", "[1] x"]) {
    try { json_decode(bad); print("  no error for", bad); }
    catch (e) { print("  bad json", repr(bad), "->", e); mix(e); }
}

// ------------------------------------------------------------------
section("maze");
let W = 31;
let H = 21;
let grid = [];
for (y in H) {
    let row = [];
    for (x in W) {
        let wall = x == 0 || y == 0 || x == W - 1 || y == H - 1;
        if (!wall && (x * 7 + y * 13) % 11 == 0) { wall = true; }
        if (!wall && x % 6 == 3 && y % 5 != 2) { wall = true; }
        push(row, wall ? "#" : ".");
    }
    push(grid, row);
}
fn bfs(grid, sx, sy, tx, ty) {
    let dist = {};
    let queue = [[sx, sy]];
    let head = 0;
    dist[sy * 1000 + sx] = 0;
    let dirs = [[1, 0], [-1, 0], [0, 1], [0, -1]];
    while (head < len(queue)) {
        let cur = queue[head];
        head += 1;
        let d = dist[cur[1] * 1000 + cur[0]];
        if (cur[0] == tx && cur[1] == ty) { return [d, head]; }
        for (dir in dirs) {
            let nx = cur[0] + dir[0];
            let ny = cur[1] + dir[1];
            if (grid[ny][nx] == "#") { continue; }
            let key = ny * 1000 + nx;
            if (has(dist, key)) { continue; }
            dist[key] = d + 1;
            push(queue, [nx, ny]);
        }
    }
    return [-1, head];
}
let result = bfs(grid, 1, 1, W - 2, H - 2);
for (y in 5) { print("  " + join(grid[y])); }
print("shortest path:", result[0], "visited:", result[1]);
mix(result);

// ------------------------------------------------------------------
section("gc");
let garbage_rounds = 0;
for (round in 60) {
    let junk = [];
    for (i in 200) { push(junk, {id: i, name: "item" + str(i), tags: [i, i + 1]}); }
    garbage_rounds += len(junk);
}
let live = gc();
let st = stats();
print("allocated rounds:", garbage_rounds, "gc ran:", st.gc_runs > 0, "live objects sane:", live > 100 && live < 20000);
let survivors = [];
for (i in 1000) { push(survivors, "s" + str(i)); }
gc();
print("survivors intact:", survivors[0], survivors[999], len(survivors));
mix(survivors[500]);

// ------------------------------------------------------------------
section("disassembly");
fn tiny(a, b) { return a * b + 1; }
let listing = disasm(tiny);
print(listing);
mix(len(listing));

// ------------------------------------------------------------------
section("summary");
print("checksum:", checksum, "exit code:", checksum & 0x7f);
return checksum;
