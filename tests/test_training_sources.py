"""Where the capability classifier's training data comes from: the sampled sources' windows and
extracts (dolly, FOLIO, Personality Chat, Super-NaturalInstructions, Arena-Bench's grades), the
authored requests and their held-out authors, the benchmarks kept out of training, and `make
train`'s refusal to replace an artifact trained with sources this machine lacks.
"""

from __future__ import annotations

import hashlib
import http.server
import json
import os
from pathlib import Path

import pytest

from evals.datasets import DatasetError
from evals.training.train import Settings, train
from router.signals.capability.classifier import (
    CATEGORIES,
    save_artifact,
)
from tests.test_capability import TINY  # the few hand-written prompts a tiny training run learns from

ROOT = Path(__file__).resolve().parents[1]
# the authors past the alphabet's 24 letters: the sixth and seventh batches (trained), the fifth (held out)
TRAINED_PAIRS = tuple("a" + letter for letter in "efghijklmnopqrst")  # ae ... at
HELD_OUT_PAIRS = ("y", "z", "aa", "ab", "ac", "ad")


def test_windows_keep_only_whole_records_and_dolly_labels_map_by_kind() -> None:
    """A window's cut first and last lines are dropped; dolly's eight kinds map onto categories,
    a passage task without its passage is left out, and classification depends on the passage."""
    from evals.training.instructions import dolly_example
    from evals.training.samples import complete_lines, dolly_rows, offsets

    record = json.dumps(
        {
            "instruction": "Summarise this",
            "context": "Some text.",
            "category": "summarization",
            "response": "x",
        }
    )
    window = 'response": "cut"}\n' + record + "\n" + record[:20]
    assert complete_lines(window, first=False) == [record]
    assert complete_lines(record + "\n", first=True) == [record]
    assert dolly_rows([window, window]) == [
        {"instruction": "Summarise this", "context": "Some text.", "category": "summarization"}
    ]
    assert offsets(100_000, 3) == [0, 42_000, 84_000]

    def label(category: str, context: str = "") -> str | None:
        example = dolly_example(
            {"instruction": "Which of these are fish?", "context": context, "category": category}
        )
        return example.label if example else None

    assert [label(k) for k in ("creative_writing", "brainstorming", "open_qa", "general_qa")] == [
        "writing",
        "writing",
        "other",
        "other",
    ]
    assert [label(k, "A passage.") for k in ("closed_qa", "information_extraction", "summarization")] == [
        "extraction",
        "extraction",
        "extraction",
    ]
    assert label("closed_qa") is None and label("classification") == "other"
    assert label("classification", "A passage.") == "extraction"
    long = dolly_example(
        {"instruction": "Q?", "context": "a" * 900 + "\n\n" + "b" * 900, "category": "closed_qa"}
    )
    assert long is not None and long.text == "Q?\n\n" + "a" * 900  # cut at the paragraph


def test_folio_and_small_talk_rows_become_prompts() -> None:
    from evals.training.instructions import FOLIO_TEMPLATES, chitchat_queries, folio_example

    row = {"premises": ["All cats purr. ", "Tom is a cat."], "conclusion": " Tom purrs. ", "label": "True"}
    example = folio_example(row, 7)
    other = folio_example({**row, "conclusion": "Tom is not a cat."}, 7)
    assert example.held_out is not None and example.held_out == other.held_out  # a story is held out whole
    assert example.label == "reasoning" and "All cats purr. Tom is a cat." in example.text
    assert "Tom purrs." in example.text and any(
        example.text.startswith(t.split("{")[0]) for t in FOLIO_TEMPLATES
    )
    table = (
        "Question\tAnswer\tMetadata\r\nHiya\tHi.\tScenario:Greetings\r\n\t\t\r\nHow are you?\tGreat.\tx\r\n"
    )
    assert [(e.text, e.label) for e in chitchat_queries(table)] == [
        ("Hiya", "simple_chat"),
        ("How are you?", "simple_chat"),
    ]


def test_authored_requests_are_balanced_labelled_and_trained_on() -> None:
    """Thirty-four authors' requests (one crowd each, 25 per category per author) enter training under
    their own labels as the `authored` source, and none of them repeats a held-out prompt or shares
    eight words in a row with one; twelve more authors' requests are scored, never trained on."""
    from collections import Counter

    from evals import heldout_category as sets
    from evals.heldout_category import (
        AUTHORED_HELDOUT,
        AUTHORED_SECOND_READER,
        authored_heldout_examples,
        loose_key,
        word_runs,
    )
    from evals.training.corpus import DEFAULT_SEED, all_examples, build_split
    from evals.training.instructions import AUTHORED, authored_examples
    from router.signals.capability.classifier import CATEGORIES

    rows = [json.loads(line) for line in AUTHORED.read_text(encoding="utf-8").splitlines()]
    assert Counter((row["crowd"], row["category"]) for row in rows) == {
        (crowd, category): 25 for crowd in [*"abcdefghijklmnopqr", *TRAINED_PAIRS] for category in CATEGORIES
    }
    held_out = [json.loads(line) for line in AUTHORED_HELDOUT.read_text(encoding="utf-8").splitlines()]
    assert Counter((row["crowd"], row["category"]) for row in held_out) == {
        (crowd, category): 25 for crowd in [*"stuvwx", *HELD_OUT_PAIRS] for category in CATEGORIES
    }

    split = build_split(DEFAULT_SEED)
    trained = split.train
    trained_keys = {loose_key(e.text) for e in trained}
    trained_runs = {run for e in trained for run in word_runs(e.text)}
    # a second reader labelled 210 of the fourth batch's and 210 of the fifth's held-out requests blind
    # (the prompt and CATEGORIES.md only)
    second = dict(
        line.split("\t") for line in AUTHORED_SECOND_READER.read_text(encoding="utf-8").splitlines()[1:]
    )
    authors = {hashlib.sha1(row["prompt"].encode()).hexdigest()[:12]: row["category"] for row in held_out}
    assert len(second) > 400 and set(second) <= set(authors)  # 420 read, five texts twice
    assert sum(authors[key] == label for key, label in second.items()) / len(second) > 0.95
    scored = authored_heldout_examples()
    assert len(scored) > 0.85 * len(held_out)  # about 270 repeat or nearly repeat a trained prompt
    assert not [p for p, _, _ in scored if loose_key(p) in trained_keys or word_runs(p) & trained_runs]
    examples = authored_examples()
    assert [(e.text, e.label, e.source) for e in examples] == [
        (row["prompt"], row["category"], "authored") for row in rows
    ]
    kept_once = {e.text for e in all_examples(7) if e.source == "authored"}
    assert len(kept_once) > 0.95 * len(rows)  # short ones ("hi") repeat each other or CLINC: kept once
    # no cap drops an author's request: every one kept once is on one side of the split
    assert {e.text for e in split.train + split.test if e.source == "authored"} == kept_once

    try:
        held = [sets.category_examples(), sets.self_instruct_examples(), sets.wizardlm_examples()]
    except DatasetError:
        if os.environ.get("CI"):
            raise
        pytest.skip("the held-out sets are not in a local mirror or cache")
    scored = set().union(*(word_runs(p) for prompts in held for p, _, _ in prompts))
    # eight tokens of a code idiom ("for (int i = 1; i < n; i++)") are no copied prompt: a shared
    # run counts when at least four of its words have three letters or more
    shared = [run for row in rows for run in word_runs(row["prompt"]) & scored]
    assert scored and not [run for run in shared if sum(len(word) >= 3 for word in run.split()) >= 4]
    assert len(shared) < 5


def _serve(files: dict[str, bytes]) -> http.server.ThreadingHTTPServer:
    """A loopback HTTP server answering GET for each path of `files` with its bytes, 404 otherwise
    (as raw.githubusercontent.com does); the caller shuts it down."""
    import threading

    class Files(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            body = files.get(self.path, b"404: Not Found")
            self.send_response(200 if self.path in files else 404)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: object) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Files)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


def test_each_author_left_out_takes_its_requests_and_their_near_twins_out_of_training() -> None:
    """Leave-one-author-out (evals.heldout): every author's group scores only that author's
    requests, and its training side holds none of them, in any case or punctuation, and no other
    author's request sharing eight words in a row with one of them; a text nine authors wrote
    counts as each one's."""
    from evals.heldout_category import loose_key, word_runs
    from evals.leave_one_out import authored_crowds, left_out_groups
    from evals.training.corpus import DEFAULT_SEED, build_split

    crowds = authored_crowds()
    assert len(crowds[loose_key("hi")]) >= 9 and len(crowds[loose_key("capital of australia?")]) > 1
    groups = {name: (kept, scored) for name, kept, scored in left_out_groups(build_split(DEFAULT_SEED))}
    authors = sorted(name for name in groups if name.startswith("authored/"))
    assert len(authors) == 18 + len(TRAINED_PAIRS)
    for name in authors:
        kept, scored = groups[name]
        crowd = name.split("/")[1]
        assert scored and all(e.source == "authored" and crowd in crowds[loose_key(e.text)] for e in scored)
        assert not {loose_key(e.text) for e in kept} & {loose_key(e.text) for e in scored}
        runs = {run for e in scored for run in word_runs(e.text)}
        assert not [e.text for e in kept if e.source == "authored" and word_runs(e.text) & runs]
    assert len({frozenset(e.text for e in groups[name][1]) for name in authors}) == len(authors)


def test_benchmarks_kept_for_outside_judging_are_never_trained_on() -> None:
    """ARC, WinoGrande and MBPP tasks are excluded by name or Source; "arc" only as a whole Source
    name, so sarcasm detection or a StarCon stance task stays in."""
    from evals.training.instructions import ni_excluded

    assert ni_excluded("task228_arc_answer_generation_easy", ("arc",))
    assert ni_excluded("task999_some_science_questions", ("arc",))
    assert ni_excluded("task999_some_science_questions", ("ai2_arc",))
    assert ni_excluded("task033_winogrande_answer_generation", ("winogrande",))
    assert ni_excluded("task999_python_programs", ("mbpp",))
    assert not ni_excluded(
        "task1488_sarcasmdetection_headline_classification", ("news_headlines_dataset_for_sarcasm_detection",)
    )
    assert not ni_excluded("task513_argument_stance_classification", ("starcon",))
    assert not ni_excluded("task1540_parsed_pdfs_summarization", ("peer_read",))


def test_ni_tasks_become_prompts_held_out_whole_and_never_from_a_held_out_dataset(tmp_path: Path) -> None:
    """The NI sample: task extracts in a folder, or the published task files fetched over HTTP at
    the commits the labels file records, become the same rows (one per listed instance); a row
    becomes the definition and its input under the task's label, held out by task; a task drawing
    on a dataset of the held-out NI-format sets is refused, and every task those sets score is one."""
    from evals.heldout_category import TASK_CATEGORY
    from evals.training import instructions, samples

    task, commit = "task999_toy_counting", "c" * 40
    extract = {
        "task": task,
        "commit": commit,
        "categories": ["Mathematics"],
        "definition": "Count the vowels. ",
        "instances": [{"id": "a", "input": "banana"}, {"id": "b", "input": "kiwi "}],
    }
    (tmp_path / f"{task}.json").write_text(json.dumps(extract))
    (tmp_path / "notes.json").write_text("{}")  # not a task extract: ignored
    rows = samples.ni_rows(tmp_path)
    assert [(r["id"], r["input"], r["task"]) for r in rows] == [("a", "banana", task), ("b", "kiwi ", task)]
    published = {  # as the repository holds it: more instances than were kept, a list of definitions
        "Categories": ["Mathematics"],
        "Definition": ["Count the vowels. "],
        "Instances": [
            {"id": i, "input": t, "output": ["3"]} for i, t in (("z", "x"), ("a", "banana"), ("b", "kiwi "))
        ],
    }

    server = _serve({f"/{commit}/tasks/{task}.json": json.dumps(published).encode()})

    def reread() -> None:
        for cached in (instructions._ni_lines, instructions.ni_labels, instructions.ni_sources):
            cached.cache_clear()

    reread()
    original = instructions.NI_LABELS
    try:
        instructions.NI_LABELS = tmp_path / "labels.tsv"
        instructions.NI_LABELS.write_text(
            f"task\tcategory\tcommit\tinstances\tsource\twhy\n{task}\tmath\t{commit}\ta,b\ttoys\tcounting\n"
        )
        base = f"http://127.0.0.1:{server.server_address[1]}"
        assert samples.ni_rows_fetched(base, timeout=10) == rows
        examples = [instructions.ni_example(row, 7) for row in rows]
        assert [e.text for e in examples] == ["Count the vowels.\n\nbanana", "Count the vowels.\n\nkiwi"]
        assert {e.label for e in examples} == {"math"} and examples[0].source == "ni-train"
        assert examples[0].held_out is not None and examples[0].held_out == examples[1].held_out
        with pytest.raises(ValueError, match="no category"):
            instructions.ni_example({**rows[0], "task": "task998_unlabelled"}, 7)
        with pytest.raises(ValueError, match="held-out dataset"):
            instructions.ni_example({**rows[0], "task": "task1999_bbh_new_puzzle"}, 7)
        # a task is known by its Source too: DART is made of WebNLG and E2E, which are held out
        instructions.NI_LABELS.write_text(
            f"task\tcategory\tcommit\tinstances\tsource\twhy\n{task}\tmath\t{commit}\ta,b\tdart\tx\n"
        )
        reread()
        with pytest.raises(ValueError, match="held-out dataset"):
            instructions.ni_example(rows[0], 7)
        instructions.NI_LABELS.write_text(
            f"task\tcategory\tcommit\tinstances\tsource\twhy\n{task}\tmath\t{commit}\ta,q\ttoys\tx\n"
        )
        reread()
        with pytest.raises(ValueError, match="no instance q"):
            samples.ni_rows_fetched(base, timeout=10)
        instructions.NI_LABELS.write_text(
            f"task\tcategory\tcommit\tinstances\tsource\twhy\n{task}\tmath\t{'d' * 40}\ta\ttoys\tx\n"
        )
        reread()
        with pytest.raises(OSError):  # a task not at that commit: 404
            samples.ni_rows_fetched(base, timeout=10)
    finally:
        server.shutdown()
        instructions.NI_LABELS = original
        reread()
    assert all(instructions.ni_excluded(name) for name in TASK_CATEGORY)
    shipped = instructions.ni_labels()
    sources = instructions.ni_sources()
    assert shipped and not any(instructions.ni_excluded(name, sources[name]) for name in shipped)
    assert set(shipped.values()) <= set(CATEGORIES)
    assert all(len(c) == 40 and ids for _, c, ids in instructions.ni_selection())
    if "ni-train-sample" not in instructions.missing():  # the labels file lists the sample's rows
        from evals.datasets import read_jsonl

        listed = [(name, c, i) for name, c, ids in instructions.ni_selection() for i in ids]
        assert [(r["task"], r["commit"], r["id"]) for r in read_jsonl("ni-train-sample")] == listed


def test_arena_bench_grades_are_read_from_the_published_judgements(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Arena-Bench's projections keep each judgement's question id and grade in file order (the
    file's null stays None; a grade that is not an integer is refused, never rounded), from a
    file or from the published one at its registered commit; a file that does not give the
    registered projection leaves nothing in the cache. Where the registered files are here: the
    prompts both models were graded on, less MT-Bench's and one judged but since replaced, each
    with "strong needed" = GPT-4's grade at least the margin above Mixtral's."""
    from evals.datasets import REGISTRY
    from evals.training import outcomes, samples
    from router import datafiles

    judged = [
        {"question_id": "a" * 32, "model": "m", "user_prompt": "x", "judgment": "[[9]]", "score": 9},
        {"question_id": "b" * 32, "model": "m", "user_prompt": "x", "judgment": "[[7.5]]", "score": None},
    ]
    text = "".join(json.dumps(row) + "\n" for row in judged)
    assert samples.arena_rows(text) == [
        {"question_id": "a" * 32, "score": 9},
        {"question_id": "b" * 32, "score": None},
    ]
    for odd in (7.5, True, "9"):  # refused, never rounded or read as 1
        with pytest.raises(ValueError, match="not an integer"):
            samples.arena_rows(json.dumps({**judged[0], "score": odd}))
    dataset = REGISTRY["arena-bench-v1-gpt4"]
    server = _serve({f"/{dataset.commit}/{dataset.source_path}": text.encode()})
    try:
        base = f"http://127.0.0.1:{server.server_address[1]}"
        assert samples.arena_text_fetched("arena-bench-v1-gpt4", base, timeout=10) == text
        with pytest.raises(OSError):  # the other file is not at that path: 404
            samples.arena_text_fetched("arena-bench-v1-mixtral", base, timeout=10)
    finally:
        server.shutdown()
    published = tmp_path / "judgements.jsonl"
    published.write_text(text)
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("TURNOUT_CACHE_DIR", str(tmp_path / "cache"))
        assert samples.main(["arena-gpt4", "--full", str(published)]) == 1  # not the registered one
        assert not (datafiles.cache_dir() / dataset.local_path).exists()
    assert "not the registered one; nothing written" in capsys.readouterr().out
    with pytest.raises(SystemExit) as refused:
        samples.main(["arena-mixtral", "--tasks", str(tmp_path)])
    assert refused.value.code == 2
    from evals.heldout import ARENA_BENCH, arena_bench_outcomes

    with pytest.MonkeyPatch.context() as patch:  # no mirror folder, an empty cache: scored nowhere
        patch.setenv("TURNOUT_CACHE_DIR", str(tmp_path / "empty"))
        patch.setattr(datafiles, "mirror_dirs", lambda: [])
        assert arena_bench_outcomes() == []
    graded = arena_bench_outcomes()
    if any(datafiles.find(REGISTRY[name].local_path) is None for name in ARENA_BENCH):
        assert graded == []
        return
    from evals.heldout_category import loose_key

    # the registered files (pinned by sha256): 300 judgements of each model, 7 null grades (4 + 3),
    # one judged prompt replaced in the question file since, one prompt that is MT-Bench's
    assert len(graded) == 291 and len({o.text for o in graded}) == 291
    assert sum(o.strong_needed for o in graded) == 195
    # the prompt that replaced a judged one was never graded
    assert not any(o.text.startswith("An AI assistant is tasked to identify toxic comments") for o in graded)
    assert not any(loose_key(o.text).startswith("readthebelowpassagecarefully") for o in graded)
    for o in graded:
        assert o.benchmark == "arena-bench" and 1 <= o.weak <= 10 and 1 <= o.strong <= 10
        assert o.strong_needed == (o.strong - o.weak >= outcomes.MT_BENCH_MARGIN)


def test_sampling_checks_its_windows_and_training_keeps_a_shipped_artifact(tmp_path: Path) -> None:
    """A folder without the registered windows is refused in one line; `train` will not overwrite an
    artifact trained with sources this machine lacks, and says which."""
    from evals.training import samples
    from evals.training.train import _absent_sources

    (tmp_path / "w_0.txt").write_text("{}\n")
    with pytest.raises(SystemExit) as refused:
        samples.main(["folio", "--windows", str(tmp_path)])
    assert refused.value.code == 2
    texts = [t for examples in TINY.values() for t in examples]
    labels = [label for label, examples in TINY.items() for _ in examples]
    artifact = tmp_path / "tiny.npz"
    trained = {"optional_sources": ["dolly-15k-sample", "folio-sample"]}
    save_artifact(
        artifact,
        train(texts, labels, texts, [False] * len(texts), Settings(hash_bits=10, max_iter=50), trained),
    )
    assert _absent_sources(artifact, ["folio-sample", "personality-chat"]) == ["folio-sample"]
    assert (
        _absent_sources(artifact, []) == [] and _absent_sources(tmp_path / "none.npz", ["folio-sample"]) == []
    )


def test_make_train_refuses_to_replace_an_artifact_trained_with_sources_missing_here(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """The command itself, on a machine whose cache lacks the sampled sources: exit 2, one line, the
    artifact untouched (nothing is trained)."""
    from evals.training.train import main

    monkeypatch.setenv("TURNOUT_CACHE_DIR", str(tmp_path / "empty-cache"))  # ../shared/data has none of them
    texts = [t for examples in TINY.values() for t in examples]
    labels = [label for label, examples in TINY.items() for _ in examples]
    artifact = tmp_path / "shipped.npz"
    trained = {"optional_sources": ["dolly-15k-sample"]}
    save_artifact(
        artifact,
        train(texts, labels, texts, [False] * len(texts), Settings(hash_bits=10, max_iter=50), trained),
    )
    before = artifact.read_bytes()
    assert main(["--out", str(artifact)]) == 2
    message = capsys.readouterr().err.strip()
    assert "dolly-15k-sample" in message and "--allow-missing" in message and len(message.splitlines()) == 1
    assert artifact.read_bytes() == before


def test_tiered_requests_train_difficulty_in_their_categories_and_held_out_authors_never() -> None:
    """Eight authors' tiered requests (20 hard and 20 easy per category, 20 small talk, length kept
    from telling the tiers apart) train difficulty in TIER_CATEGORIES only, each as its own label,
    and the frontier score in every category; four more authors' are never trained on and share no
    eight words in a row with them."""
    from collections import Counter

    from evals.heldout_category import word_runs
    from evals.training.outcomes import (
        TIER_CATEGORIES,
        TIER_WEIGHT,
        TIERS,
        TIERS_HELD_OUT,
        tier_outcomes,
        tier_rows,
    )
    from router.signals.capability.classifier import CATEGORIES, CapabilityClassifier

    trained, held_out = tier_rows(TIERS), tier_rows(TIERS_HELD_OUT)
    expected = {(c, t): 20 for c in CATEGORIES if c != "simple_chat" for t in ("hard", "easy")}
    assert {row["crowd"] for row in trained} == {f"d{n}" for n in (1, 2, 3, 4, 7, 8, 9, 10)}
    for crowd in {row["crowd"] for row in trained}:
        mine = [row for row in trained if row["crowd"] == crowd]
        assert Counter((row["category"], row["tier"]) for row in mine) == {
            **expected,
            ("simple_chat", "easy"): 20,
        }
    assert {row["crowd"] for row in held_out} == {"d5", "d6", "d11", "d12"} and len(held_out) > 920
    for rows in (trained, held_out):
        hard = [len(row["prompt"].split()) for row in rows if row["tier"] == "hard"]
        assert sum(words < 25 for words in hard) > 0.4 * len(hard)  # short hard requests
    # nor is one a trained tier or authored category request, but for case and punctuation
    # (short ones: "thanks!"), or shares eight words in a row with one
    from evals.heldout_category import loose_key
    from evals.training.instructions import authored_rows

    seen = trained + authored_rows()
    keys = {loose_key(row["prompt"]) for row in seen}
    runs = {run for row in seen for run in word_runs(row["prompt"])}
    assert not [
        r["prompt"] for r in held_out if loose_key(r["prompt"]) in keys or word_runs(r["prompt"]) & runs
    ]

    outcomes, weights = tier_outcomes()
    kept = [row for row in trained if row["category"] in TIER_CATEGORIES]
    assert [o.text for o in outcomes] == [row["prompt"] for row in kept] and len(kept) < len(trained)
    assert [o.strong_needed for o in outcomes] == [row["tier"] == "hard" for row in kept]
    assert set(weights) == {TIER_WEIGHT}
    meta = CapabilityClassifier.load().meta
    assert meta["tier_weight"] == TIER_WEIGHT
    assert meta["difficulty_by_benchmark"]["tier"] == len({row["prompt"] for row in kept})
    assert meta["frontier_examples"] == len(trained) and meta["frontier_c"] == Settings().frontier_c


def test_the_frontier_threshold_rule_takes_the_smallest_within_the_easy_budget() -> None:
    from evals.training.frontier import EASY_BUDGET, choose

    thresholds = [0.5, 0.6, 0.7, 0.8, 0.9]
    assert choose(thresholds, [0.079, 0.048, 0.019, 0.015, 0.002]) == 0.7
    assert choose(thresholds, [0.079, 0.048, EASY_BUDGET, 0.015, 0.002]) == 0.7  # at the budget: within
    assert choose(thresholds, [0.5, 0.4, 0.3, 0.2, 0.1]) == 0.9  # none within: the strictest
    assert choose(thresholds, [0.0] * 5) == 0.5


def test_the_briefs_files_keep_their_authors_apart_and_the_artifact_says_it_learnt_them() -> None:
    """Each brief's requests (evals/labels/NUMBERS_BRIEF.md, PASSAGES_BRIEF.md): the trained
    authors' and the held-out authors' are different people, hold only the categories, and no
    scored held-out request repeats a trained one; every trained one is a training or test row of
    its source, and the shipped artifact's last refit added exactly the briefs' training rows."""
    from collections import Counter

    from evals import heldout_category as sets
    from evals.training.corpus import DEFAULT_SEED, build_split
    from evals.training.instructions import BRIEFS, authored_rows, missing
    from router.signals.capability.classifier import CATEGORIES, DEFAULT_ARTIFACT, read_artifact

    held_out = sets.BRIEFS_HELDOUT
    assert set(held_out) == set(BRIEFS)
    split = build_split(DEFAULT_SEED)
    trained_keys = {sets.loose_key(e.text) for e in split.train}
    for source, path in BRIEFS.items():
        rows, held = authored_rows(path), authored_rows(held_out[source])
        assert len(rows) > 900 and len(held) > 300
        assert not {r["crowd"] for r in rows} & {r["crowd"] for r in held}
        assert {r["category"] for r in rows + held} == set(CATEGORIES)
        assert not {sets.loose_key(r["prompt"]) for r in held} & {sets.loose_key(r["prompt"]) for r in rows}
        kept = [e for e in split.train + split.test if e.source == source]
        assert len(kept) >= 0.99 * len(rows)  # a repeat of another source's text is kept once
    numbers = authored_rows(BRIEFS["authored-numbers"])  # the brief's rule: figures outside math
    assert all(any(c.isdigit() for c in r["prompt"]) for r in numbers if r["category"] != "math")
    scored = sets.numbers_heldout_examples() + sets.passages_heldout_examples()
    assert scored and not [p for p, _, _ in scored if sets.loose_key(p) in trained_keys]

    refit = read_artifact(DEFAULT_ARTIFACT).meta["category_refits"][-1]
    added = [e for e in split.train if e.source in BRIEFS]
    assert refit["added_sources"] == sorted(BRIEFS) and refit["added_rows"] == len(added)
    if len(missing()) == 4:  # the machine the artifact was refit on lacked every optional sample
        assert refit["anchor_rows"] == len(split.train) - len(added)
    counts = read_artifact(DEFAULT_ARTIFACT).meta["category_counts"]
    before = Counter(counts) - Counter(e.label for e in added)
    assert sum(before.values()) == sum(counts.values()) - len(added) == 12_884
