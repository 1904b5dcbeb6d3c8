"""Knights & Knaves: unique-solution generator, Logic-RL answer parsing and Logic-RL's reward values.

The solver checks here use an enumerator written independently of reward_fns.logic (recursive
evaluation over itertools.product, no bitmasks), and the reward checks go through the public
``reward_fns.compute_score`` with ground truths shaped like Logic-RL's parquet rows.
"""

import ast
import itertools
import json
import random
import re
import subprocess
import sys

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from reward_fns import compute_score
from reward_fns.logic import (
    Puzzle,
    generate_puzzle,
    parse_answer,
    parse_solution_text,
    render_statement,
    score,
    solve,
)

# ---------------------------------------------------------------------------------------------
# An independent reference solver
# ---------------------------------------------------------------------------------------------


def _holds(stmt, roles):
    op, *args = stmt
    if op == "telling-truth":
        return roles[args[0]]
    if op == "lying":
        return not roles[args[0]]
    vals = [_holds(a, roles) for a in args]
    return {
        "not": lambda: not vals[0],
        "and": lambda: all(vals),
        "or": lambda: any(vals),
        "->": lambda: (not vals[0]) or vals[1],
        "<=>": lambda: vals[0] == vals[1],
    }[op]()


def brute_force(statements):
    """Every assignment where each person's statement is true exactly when that person is a knight."""
    return {
        roles
        for roles in itertools.product([False, True], repeat=len(statements))
        if all(_holds(s, roles) == roles[i] for i, s in enumerate(statements))
    }


def _random_statement(rng, n, depth):
    if depth == 0 or rng.random() < 0.3:
        return (rng.choice(["telling-truth", "lying"]), rng.randrange(n))
    op = rng.choice(["not", "and", "or", "->", "<=>"])
    if op == "not":
        return ("not", _random_statement(rng, n, depth - 1))
    width = rng.choice([2, 3]) if op in ("and", "or") else 2
    return (op, *(_random_statement(rng, n, depth - 1) for _ in range(width)))


def test_solve_matches_brute_force_on_arbitrary_statements():
    """Deeper and wider statements than the generator makes, with 0, 1 or many solutions."""
    rng = random.Random(0)
    counts = set()
    for _ in range(600):
        n = rng.randint(1, 6)
        statements = tuple(_random_statement(rng, n, depth=3) for _ in range(n))
        found = solve(statements)
        assert set(found) == brute_force(statements) and len(found) == len(set(found)), statements
        counts.add(min(len(found), 2))
    assert counts == {0, 1, 2}


def test_solve_reads_logic_rl_statement_strings():
    assert solve("(('lying', 1), ('and', ('telling-truth', 0), ('telling-truth', 1)))") == [(True, False)]
    assert solve("(('lying', 0),)") == []  # "I am a knave" has no consistent speaker


@pytest.mark.parametrize(
    "bad, match",
    [
        ("not python", "tuple literal"),
        ((), "non-empty"),
        ((("lying", 5),), "person index in 0..0"),
        ((("lying", True),), "person index"),
        ((("xor", ("lying", 0), ("lying", 0)),), "unknown operator 'xor'"),
        ((("->", ("lying", 0)),), "1 operands"),
    ],
)
def test_solve_rejects_malformed_statements(bad, match):
    with pytest.raises(ValueError, match=match):
        solve(bad)


# ---------------------------------------------------------------------------------------------
# Generator
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("n", range(2, 9))
def test_every_generated_puzzle_has_exactly_its_solution(n):
    seeds = range(40) if n < 8 else range(25)
    for seed in seeds:
        p = generate_puzzle(n, seed)
        assert brute_force(p.statements) == {p.solution}, (n, seed)
        assert p.n_people == len(p.names) == len(p.statements) == len(p.solution) == n
        assert len(set(p.names)) == n
        # the Logic-RL-style statements string round-trips to the same puzzle
        assert ast.literal_eval(p.ground_truth()["statements"]) == p.statements


def test_same_seed_same_puzzle_and_different_seeds_differ():
    for n in (2, 5, 8):
        assert generate_puzzle(n, 11) == generate_puzzle(n, 11)
        texts = {generate_puzzle(n, seed).text for seed in range(30)}
        assert len(texts) == 30
    assert generate_puzzle(4, 3).statements != generate_puzzle(5, 3).statements[:4]


def test_generation_does_not_touch_global_random():
    random.seed(1234)
    state = random.getstate()
    generate_puzzle(6, 99)
    assert random.getstate() == state
    random.seed(1)
    a = generate_puzzle(6, 99)
    random.seed(2)
    assert generate_puzzle(6, 99) == a


def test_puzzles_are_identical_across_processes_and_hash_seeds():
    code = "from reward_fns.logic import generate_puzzle as g; print(repr([g(n, s) for n in (3, 7) for s in (0, 5)]))"
    outs = {
        subprocess.run(
            [sys.executable, "-c", code], capture_output=True, text=True, check=True, env={"PYTHONHASHSEED": h}
        ).stdout
        for h in ("0", "1", "77")
    }
    assert len(outs) == 1
    assert repr([generate_puzzle(n, s) for n in (3, 7) for s in (0, 5)]) + "\n" in outs


def test_text_mentions_every_name_and_statement():
    for n in range(2, 9):
        p = generate_puzzle(n, seed=n * 7)
        assert p.text.startswith("A very special island is inhabited only by knights and knaves.")
        assert f"You meet {n} inhabitants: " in p.text
        assert p.text.endswith("So who is a knight and who is a knave?")
        for name, stmt in zip(p.names, p.statements, strict=True):
            assert name in p.text
            content = render_statement(p.names, stmt)
            assert content.lower() in p.text.lower(), content
            assert p.text.count(name) >= 2  # introduced, then speaks


def test_solution_text_is_logic_rl_format_and_round_trips():
    p = generate_puzzle(5, 2)
    lines = p.solution_text.split("\n")
    assert [ln.split(")")[0] for ln in lines] == [f"({k}" for k in range(1, 6)]
    roles = parse_solution_text(p.ground_truth()["solution_text_format"])
    assert list(roles) == list(p.names) and tuple(roles.values()) == p.solution


@pytest.mark.parametrize("n, seed", [(1, 0), (9, 0), (0, 0), (True, 0), (3.0, 0), ("3", 0)])
def test_generate_rejects_bad_sizes(n, seed):
    with pytest.raises(ValueError, match="n_people must be an int in 2..8"):
        generate_puzzle(n, seed)


def test_generate_rejects_non_int_seed():
    with pytest.raises(TypeError, match="seed must be an int"):
        generate_puzzle(3, "1")


def test_puzzle_is_frozen():
    p = generate_puzzle(3, 0)
    assert isinstance(p, Puzzle)
    with pytest.raises(AttributeError):
        p.names = ("A", "B", "C")


# ---------------------------------------------------------------------------------------------
# parse_answer
# ---------------------------------------------------------------------------------------------

NAMES = ["Zoey", "Oliver", "Ethan"]


@pytest.mark.parametrize(
    "text, expected",
    [
        ("Zoey is a knight\nOliver is a knave\nEthan is a knight", {"Zoey": True, "Oliver": False, "Ethan": True}),
        (
            "(1) Zoey is a knight\n(2) Oliver is a knave\n(3) Ethan is a knave",
            {"Zoey": True, "Oliver": False, "Ethan": False},
        ),
        (
            "**Ethan is a knight.** zoey IS A KNAVE; Oliver   is\ta Knight!",
            {"Zoey": False, "Oliver": True, "Ethan": True},
        ),
        (
            "1. Zoey is a knave,\n2. Oliver is a knave.\n3. Ethan is a knave.",
            {"Zoey": False, "Oliver": False, "Ethan": False},
        ),
    ],
)
def test_parse_answer_accepts_logic_rl_answers(text, expected):
    assert parse_answer(text, NAMES) == expected


@pytest.mark.parametrize(
    "text",
    [
        "",
        "Zoey is a knight, Oliver is a knave",  # a person missing
        "Zoey is a knight, Oliver is a knave, Ethan is a knave. So two knaves.",  # extra role words
        "Zoey is a knight, Oliver is a knave, Ethan is the knave",  # not 'is a'
        "**Zoey** is a knight, Oliver is a knave, Ethan is a knave",  # Logic-RL needs 'Name is a'
        "Zoey is a knight, Oliver is a knave, Ethanol is a knave",  # whole names only
        "Zoey: knight, Oliver: knave, Ethan: knave",
    ],
)
def test_parse_answer_rejects_what_logic_rl_rejects(text):
    assert parse_answer(text, NAMES) is None


def test_parse_answer_without_names_or_text():
    assert parse_answer("Zoey is a knight", []) is None
    assert parse_answer(None, NAMES) is None


# ---------------------------------------------------------------------------------------------
# Scores: Logic-RL's values through the public dispatcher
# ---------------------------------------------------------------------------------------------

LOGIC_RL_GT = {
    "solution_text_format": "(1) Zoey is a knight\n(2) Oliver is a knave\n(3) Ethan is a knight",
    "statements": "(('lying', 1), ('lying', 2), ('telling-truth', 0))",
}
RIGHT = "(1) Zoey is a knight\n(2) Oliver is a knave\n(3) Ethan is a knight"
WRONG = "(1) Zoey is a knight\n(2) Oliver is a knight\n(3) Ethan is a knight"


# Logic-RL's two prompt templates (Unakar/Logic-RL, examples/data_preprocess/kk.py), abridged: what
# matters to its scorer is the assistant header and the "<think>" the prompt ends with.
LOGIC_RL_PROMPTS = {
    "qwen-instruct": "<|im_start|>system\nYou are a helpful assistant. ... <think> </think> and<answer> </answer> "
    "tags ...<|im_end|>\n<|im_start|>user\n{quiz}\n<|im_end|>\n<|im_start|>assistant\n<think>",
    "base": "The user asks a question, and the Assistant solves it. ... <think> </think> and <answer> </answer> "
    "tags ...\n\nUser:{quiz}\nAssistant: <think>",
}
CHAT_PROMPT = "<|im_start|>system\n...<|im_end|>\n<|im_start|>user\n{quiz}<|im_end|>\n<|im_start|>assistant\n"


def _resp(answer, think="Let me check each case."):
    """A response to a prompt that ends with <think> (Logic-RL's): it continues the think block."""
    return f"{think}</think>\n<answer>{answer}</answer>"


def _opened(answer, think="Let me check each case."):
    """A response that opens <think> itself, as after a chat prompt ending with the assistant header."""
    return "<think>" + _resp(answer, think)


@pytest.mark.parametrize(
    "response, expected",
    [
        (_resp(RIGHT), 3.0),
        (_resp(WRONG), -0.5),
        (_resp("Zoey and Ethan are knights, Oliver is a knave"), -1.0),  # formatted, unparseable
        (_resp(""), -1.0),  # formatted, empty answer
        (_resp(RIGHT + "\nSo there are two knights."), -1.0),  # role count != people
        (RIGHT, -3.0),  # no tags at all
        (_resp(RIGHT) + "<answer>" + RIGHT + "</answer>", -3.0),  # two answer blocks
        ("a</think><think>b</think><answer>" + RIGHT + "</answer>", -3.0),  # two think blocks
        ("x<answer>" + RIGHT + "</answer></think>", -3.0),  # wrong order
        (_opened(RIGHT), -3.0),  # a second <think> after the prompt's
    ],
)
def test_kk_logic_scores_equal_logic_rl(response, expected):
    r = compute_score("kk_logic", response, LOGIC_RL_GT)
    assert r["score"] == expected
    assert r["format_ok"] is (expected != -3.0)
    assert r["error"] == ""


# Logic-RL's totals, derived by hand from kk.py's rules: it checks the tags in the text after the
# prompt's assistant header, i.e. the prompt's trailing "<think>" plus the response. Format +1 when
# <think>, </think>, <answer>, </answer> each occur exactly once and in that order, else -1; the
# answer (only if the format passed) +2 all right, -1.5 parsed but wrong, -2 unparseable; else -2.
KK_LOGIC_TOTALS = [
    # "<think>" (prompt) + "<think>x</think>..." holds two <think>: format -1, answer skipped -2
    pytest.param(_opened(RIGHT), -1 - 2, id="prompt-think+response-opens-think-right"),
    pytest.param(_opened(WRONG), -1 - 2, id="prompt-think+response-opens-think-wrong"),
    # "<think>" (prompt) + "x</think>\n<answer>...</answer>": one of each tag, in order: +1
    pytest.param(_resp(RIGHT), 1 + 2, id="no-think-in-response-right"),
    pytest.param(_resp(WRONG), 1 - 1.5, id="no-think-in-response-wrong"),
    pytest.param(_resp("Zoey and Ethan are knights"), 1 - 2, id="no-think-in-response-unparseable"),
    # "<think>" (prompt) + "<answer>...</answer>": no </think>: -1, then -2
    pytest.param("<answer>" + RIGHT + "</answer>", -1 - 2, id="no-think-tags-at-all"),
]


@pytest.mark.parametrize("response, total", KK_LOGIC_TOTALS)
def test_kk_logic_scores_after_logic_rl_prompt_equal_logic_rl_totals(response, total):
    assert compute_score("kk_logic", response, LOGIC_RL_GT)["score"] == total
    # the same rule, said explicitly, for our own knights_knaves rows behind such a prompt
    for extra, kwargs in (({"think_prefilled": True}, {}), ({}, {"think_prefilled": True})):
        assert compute_score("knights_knaves", response, LOGIC_RL_GT, extra, **kwargs)["score"] == total


# After a chat prompt that ends with the assistant header, Logic-RL's scorer reads "\n" + response.
CHAT_TOTALS = [
    pytest.param(_opened(RIGHT), 1 + 2, id="response-opens-think-right"),  # one of each tag: +1, +2
    pytest.param(_opened(WRONG), 1 - 1.5, id="response-opens-think-wrong"),
    pytest.param(_resp(RIGHT), -1 - 2, id="response-never-opens-think"),  # no <think>: -1, -2
]


@pytest.mark.parametrize("response, total", CHAT_TOTALS)
@pytest.mark.parametrize("source", ["kk_logic", "knights_knaves"])
def test_think_prefilled_false_scores_the_response_alone(source, response, total):
    assert compute_score(source, response, LOGIC_RL_GT, {"think_prefilled": False})["score"] == total
    assert compute_score(source, response, LOGIC_RL_GT, think_prefilled=False)["score"] == total


def test_knights_knaves_without_a_prompt_flag_accepts_either_prompt_style():
    """Documented leniency: unset, a response is read as after <think> only when it holds none."""
    assert compute_score("knights_knaves", _resp(RIGHT), LOGIC_RL_GT)["score"] == 3.0
    assert compute_score("knights_knaves", _opened(RIGHT), LOGIC_RL_GT)["score"] == 3.0


def test_kwargs_think_prefilled_overrides_extra_info():
    r = compute_score("kk_logic", _opened(RIGHT), LOGIC_RL_GT, {"think_prefilled": True}, think_prefilled=False)
    assert r["score"] == 3.0


@pytest.mark.parametrize("bad", ["yes", 1, "true"])
def test_a_think_prefilled_that_is_not_a_bool_is_a_row_error(bad):
    r = compute_score("kk_logic", _resp(RIGHT), LOGIC_RL_GT, {"think_prefilled": bad})
    assert r["score"] == -3.0 and r["acc"] == 0.0
    assert r["error"] == f"ValueError: think_prefilled must be true, false or unset, got {bad!r}"


def test_role_words_are_counted_in_the_lower_cased_text_as_logic_rl_does():
    # "knİght".lower() is "kni̇ght" (i + combining dot), which Logic-RL's count does not see, though
    # its case-insensitive name pattern still matches it.
    gt = "(1) Zoey is a knave\n(2) Oliver is a knave\n(3) Ethan is a knave"
    # count: "knave" x3 = 3 people; every name "is a knave": +1 +2
    answer = "Zoey is a knave\nOliver is a knave\nEthan is a knave (no knİght here)"
    assert compute_score("kk_logic", _resp(answer), gt)["score"] == 3.0
    # count: knave x2 + the "knight" of "no knight" = 3; Zoey's role matched as "kni̇ght",
    # which is not "knave": parsed but wrong, +1 -1.5
    answer = "Zoey is a knİght\nOliver is a knave\nEthan is a knave\nno knight"
    assert compute_score("kk_logic", _resp(answer), gt)["score"] == -0.5


def test_kk_logic_result_fields():
    r = compute_score("kk_logic", _resp(RIGHT), LOGIC_RL_GT)
    assert (r["acc"], r["pred"]) == (1.0, "Zoey=knight,Oliver=knave,Ethan=knight")
    r = compute_score("kk_logic", _resp(WRONG), LOGIC_RL_GT)
    assert (r["acc"], r["pred"]) == (0.0, "Zoey=knight,Oliver=knight,Ethan=knight")
    r = compute_score("kk_logic", _resp("no idea"), LOGIC_RL_GT)
    assert (r["acc"], r["pred"]) == (0.0, "")
    r = compute_score("kk_logic", RIGHT, LOGIC_RL_GT)  # right answer, broken format: acc still says so
    assert (r["score"], r["acc"]) == (-3.0, 1.0)
    r = compute_score("kk_logic", _opened(RIGHT), LOGIC_RL_GT)  # a second <think>: same
    assert (r["score"], r["acc"], r["format_ok"]) == (-3.0, 1.0, False)


def test_kk_logic_answer_order_and_case_do_not_matter():
    answer = "ethan is a knight. OLIVER is a knave. Zoey is a knight."
    assert compute_score("kk_logic", _resp(answer), LOGIC_RL_GT)["score"] == 3.0


def test_ground_truth_as_json_string_or_bare_solution_text():
    assert compute_score("kk_logic", _resp(RIGHT), json.dumps(LOGIC_RL_GT))["score"] == 3.0
    assert compute_score("kk_logic", _resp(WRONG), LOGIC_RL_GT["solution_text_format"])["score"] == -0.5


@pytest.mark.parametrize("n", [2, 5, 8])
def test_knights_knaves_with_generated_ground_truth(n):
    p = generate_puzzle(n, seed=3)
    gt = p.ground_truth()
    assert compute_score("knights_knaves", _opened(p.solution_text), gt)["score"] == 3.0
    flipped = p.solution_text.replace("knight", "KNAVE_").replace("knave", "knight").replace("KNAVE_", "knave")
    assert compute_score("knights_knaves", _opened(flipped), gt)["score"] == -0.5
    one_short = "\n".join(p.solution_text.split("\n")[:-1])
    assert compute_score("knights_knaves", _opened(one_short), gt)["score"] == -1.0
    assert compute_score("knights_knaves", p.solution_text, gt)["score"] == -3.0


def test_other_schemes_use_their_own_values():
    ok, wrong, bare = _opened(RIGHT), _opened(WRONG), RIGHT
    expect = {
        "r1": (2.0, 1.0, 1.0),  # accuracy + format; a bare right answer still earns accuracy
        "simplerl": (1.0, -0.5, 1.0),  # simplerl's format is "an answer could be extracted"
        "azr": (1.0, -0.5, -1.0),
        "logicrl": (3.0, -0.5, -3.0),
    }
    for scheme, values in expect.items():
        got = tuple(compute_score("knights_knaves", r, LOGIC_RL_GT, scheme=scheme)["score"] for r in (ok, wrong, bare))
        assert got == values, scheme
    # kk_logic: the prompt opened <think>, so a response opening it again breaks the format of every tag scheme
    expect_kk = {"r1": (2.0, 1.0), "simplerl": (1.0, 1.0), "azr": (1.0, -1.0), "logicrl": (3.0, -3.0)}
    for scheme, values in expect_kk.items():
        got = tuple(compute_score("kk_logic", r, LOGIC_RL_GT, {"scheme": scheme})["score"] for r in (_resp(RIGHT), ok))
        assert got == values, scheme


@pytest.mark.parametrize(
    "bad, kind",
    [
        (None, "TypeError"),
        (42, "TypeError"),
        (["(1) Zoey is a knight"], "TypeError"),
        (b"(1) Zoey is a knight", "TypeError"),
        (
            {"solution_text": "Zoey is a knight"},
            "ValueError: knights & knaves ground_truth needs a 'solution_text_format'",
        ),
        ({"solution_text_format": ["(1) Zoey is a knight"]}, "TypeError"),
        ({"solution_text_format": ""}, "ValueError: solution text has no"),
        ("{not json", "ValueError: ground_truth looks like JSON"),
        ('["a list"]', "TypeError"),
        ("Zoey is a knight, and Oliver is a knave.", "ValueError: solution line 1 names 2 roles"),
        ("(1) Zoey is a knight\n(2) Zoey is a knave", "ValueError: solution line 2 repeats 'Zoey'"),
        ("(1) Zoey is a knight\n(2) Oliver is unknown", "ValueError: solution line 2 names 0 roles"),
    ],
)
def test_bad_ground_truth_gives_failure_score_and_clear_error(bad, kind):
    r = compute_score("kk_logic", _resp(RIGHT), bad)
    assert r["score"] == -3.0 and r["acc"] == 0.0
    assert r["error"].startswith(kind), r["error"]
    with pytest.raises((TypeError, ValueError)):
        score(_resp(RIGHT), bad, {}, "logicrl")


def _logic_rl_reference(prompt, response, names, truth):
    """Logic-RL's kk.py reward restated from its rules, on the decoded prompt + response it scores."""
    sequence = prompt + response
    for header in ("Assistant:", "<|im_start|>assistant"):  # the first header found, split at its first use
        if header in sequence:
            text = sequence.split(header, 1)[1]
            break
    else:
        raise AssertionError("the prompts here all have a header")
    tags = ["<think>", "</think>", "<answer>", "</answer>"]
    where = [text.find(t) for t in tags]
    fmt_ok = all(text.count(t) == 1 for t in tags) and where == sorted(where)
    blocks = re.findall(r"<answer>(.*?)</answer>", text, flags=re.DOTALL)
    answer = blocks[-1].strip() if blocks else ""
    if not (fmt_ok and answer):
        return (1 if fmt_ok else -1) - 2
    low = answer.lower()
    if low.count("knight") + low.count("knave") != len(names):
        return 1 - 2
    said = {}
    for name in names:
        m = re.search(rf"\b{name}\b\s+is\s+a\s+\b(knight|knave)\b", answer, flags=re.IGNORECASE)
        if not m:
            return 1 - 2
        said[name] = m.group(1).lower()
    return 1 + (2 if said == {n: "knight" if truth[n] else "knave" for n in names} else -1.5)


def _random_response(rng, names, truth):
    lines = []
    for k, name in enumerate(rng.sample(names, k=rng.choice([len(names)] * 4 + [len(names) - 1]))):
        role = truth[name] if rng.random() < 0.8 else not truth[name]
        line = f"{rng.choice([name, name, name.upper(), name.lower(), f'**{name}**'])} is a {'knight' if role else 'knave'}"
        line = rng.choice(["", f"({k + 1}) ", f"{k + 1}. ", "- "]) + rng.choice([line, f"**{line}**"])
        lines.append(line + rng.choice(["", ".", ",", "!"]))
    answer = rng.choice(["\n", " ", "; "]).join(lines) + rng.choice(["", "", " So there are knights.", " Done."])
    parts = [
        rng.choice(["", "<think>"]),
        "Suppose Zoey is a knight...",
        "</think>",
        "\n",
        "<answer>",
        answer,
        "</answer>",
    ]
    for _ in range(rng.choice([0, 0, 0, 1, 2])):  # break the format now and then
        i, j = rng.randrange(len(parts)), rng.randrange(len(parts))
        parts[i], parts[j] = rng.choice([(parts[j], parts[i]), (parts[i] * 2, parts[j]), ("", parts[j])])
    return "".join(parts)


@pytest.mark.parametrize("template", sorted(LOGIC_RL_PROMPTS))
def test_kk_logic_scores_equal_logic_rl_reference_on_varied_responses(template):
    rng = random.Random(5)
    seen = set()
    for i in range(1500):
        p = generate_puzzle(rng.randint(2, 8), seed=i)
        truth = dict(zip(p.names, p.solution, strict=True))
        response = _random_response(rng, list(p.names), truth)
        expected = _logic_rl_reference(LOGIC_RL_PROMPTS[template].format(quiz=p.text), response, p.names, truth)
        assert compute_score("kk_logic", response, p.ground_truth())["score"] == expected, response
        seen.add(expected)
    assert seen == {3, -0.5, -1, -3}


def test_knights_knaves_with_a_chat_prompt_equals_logic_rl_reference():
    rng = random.Random(6)
    seen = set()
    for i in range(1500):
        p = generate_puzzle(rng.randint(2, 8), seed=i)
        truth = dict(zip(p.names, p.solution, strict=True))
        response = _random_response(rng, list(p.names), truth)
        expected = _logic_rl_reference(CHAT_PROMPT.format(quiz=p.text), response, p.names, truth)
        got = compute_score("knights_knaves", response, p.ground_truth(), {"think_prefilled": False})["score"]
        assert got == expected, response
        seen.add(expected)
    assert seen == {3, -0.5, -1, -3}


_GT_NAMES = ["Zoey", "Oliver", "Ethan"]
_GT_TRUTH = {"Zoey": True, "Oliver": False, "Ethan": True}


@settings(max_examples=100, deadline=None)
@given(st.text(max_size=300))
@example("<think>a second think")
@example("Zoey is a knight, Oliver is a knave, Ethan is a knight. knİght")
def test_any_response_gets_logic_rl_reference_value(junk):
    prompt = LOGIC_RL_PROMPTS["qwen-instruct"].format(quiz="...")
    for text in (junk, _resp(junk), _resp(RIGHT, think=junk)):
        expected = _logic_rl_reference(prompt, text, _GT_NAMES, _GT_TRUTH)
        assert compute_score("kk_logic", text, LOGIC_RL_GT)["score"] == expected, text


@pytest.mark.parametrize(
    "response, expected",
    [
        ("x" * 1_000_000 + "</think><answer>" + RIGHT + "</answer>", 3.0),
        ("Zoey" + " " * 1_000_000 + "is a knight", -3.0),
        ("x</think><answer>" + "Zoey is a knight " * 100_000 + "</answer>", -1.0),
        ("\x00\xff<answer>" * 10_000, -3.0),
    ],
)
def test_huge_and_junk_responses_get_logic_rl_values(response, expected):
    assert compute_score("kk_logic", response, LOGIC_RL_GT)["score"] == expected
