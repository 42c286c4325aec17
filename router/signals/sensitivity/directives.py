"""Finds a caller's own instruction to keep a request inside: "process this locally", "don't send
this to the cloud", "this data must not leave our data center", "请在本地处理".

Such a request goes to private backends whatever the detectors find in it, as if it carried
personal data. Only instructions about this request count: a question about running software
locally ("how do I run Llama locally?") or a coding constraint ("don't use external libraries") does
not. The patterns run only on the text around a few anchor words found by substring search, so a
long prompt without them costs microseconds. Offline, no model.
"""

from __future__ import annotations

import re

from router.signals.sensitivity.gates import Gate

# Whatever the caller is handing over: "this", "it", "the data", "this analysis", "all results".
_SUBJECT = (
    r"(?:this|it|these|them|everything|(?:all|any)\s+of\s+(?:this|it|these|them)|(?:this|the|my|our|these"
    r"|all|any)(?:\s+[\w-]+){0,3}?\s+(?:data|dataset|analysis|request|conversation|document|documents|file"
    r"|files|information|prompt|results?|records?|text|content|details|output|answers?|question))"
)
# Where it stays: on the caller's own premises.
_LOCAL = (
    r"(?:locally|on[- ]?prem(?:ise)?s?\b|on[- ]premises|in[- ]house|on[- ]site"
    r"|(?:on|in|within|inside)\s+(?:our|my|the\s+company's)\s+(?:own\s+)?(?:[\w-]+\s+){0,3}?"
    r"(?:servers?|infrastructure|hardware|cluster|machines?|network|data\s*cent(?:er|re)s?|premises"
    r"|environment|enclave|firewall|jurisdiction|region|country|instance|operations|systems?|cloud|vpc)\b"
    r"|(?:on|in)\s+(?:a|our|my)\s+(?:local|private|sovereign)\s+[\w-]+)"
)
_LOCAL_END = r"local\b(?!\s+[a-z])"  # "keep it local." but not "keep the local copy"
# Somewhere outside: the cloud, a third party, a public model.
_OUTSIDE = (
    r"(?:(?:the\s+)?cloud|externally|outside\b|off[- ]?site|off[- ]?prem(?:ise)?s?|abroad|third[- ]part(?:y|ies)"
    r"|(?:any\s+|an\s+|the\s+)?(?:external|public|outside|remote|hosted|cloud)\s+(?:apis?|services?|models?"
    r"|providers?|servers?|llms?|ai|inference|endpoints?|vendors?)|openai|anthropic|chatgpt|gpt-?4|claude"
    r"|gemini|cross[- ]border)"
)
_NEGATION = (
    r"(?:don't|do\s+not|never|must\s+not|mustn't|should\s+not|shouldn't|cannot|can't|may\s+not|not\s+to)"
)
_CJK_STOP = "\u3002\uff01\uff1f\n"  # full stop, exclamation and question marks: a sentence ends
_MODAL = r"(?:must|should|has\s+to|have\s+to|needs?\s+to|is\s+to|are\s+to|can\s+only|may\s+only|will)"
_VERBS = (
    "keep",
    "process",
    "handle",
    "run",
    "analyze",
    "analyse",
    "store",
    "perform",
    "do",
    "answer",
    "compute",
    "treat",
)
# Matches that start with one of these must be said to the model, not describe a task (below).
_LEADS = frozenset(
    (*_VERBS, "don't", "never", "must", "mustn't", "should", "shouldn't", "cannot", "can't", "may", "not")
)
_PATTERNS = (
    # "process this locally", "keep this analysis on-prem", "run this on our local GPU cluster"
    rf"\b(?:{'|'.join(_VERBS)})\s+{_SUBJECT}"
    rf"(?:\s+[\w-]+){{0,3}}?\s+{_LOCAL}",
    # "keep all intermediate results within our secure enclave", "keep it local"
    rf"\bkeep\s+(?:[\w-]+\s+){{1,4}}?(?:{_LOCAL}|{_LOCAL_END})",
    # "keep this internal", "keep this conversation internal": only what is handed over, so that
    # "keep the helper functions internal" (code's visibility) is not one
    rf"\bkeep\s+{_SUBJECT}\s+internal\b(?!\s+[a-z])",
    # "this must be processed in our sovereign cloud instance only", "this analysis stays within our jurisdiction"
    rf"\b{_SUBJECT}\s+(?:{_MODAL}\s+(?:only\s+)?(?:be\s+(?:processed|handled|kept|stored|run|analy[sz]ed)"
    rf"|stay|remain)|stays|remains)\s+(?:only\s+)?(?:{_LOCAL}|{_LOCAL_END})",
    # "don't send this to the cloud", "do not send this data externally", "never share my data with OpenAI"
    rf"{_NEGATION}\s+(?:send|share|upload|transmit|transfer|forward|expose|leak|post)\w*\s+"
    rf"(?:{_SUBJECT}\s+)?(?:to\s+|with\s+|into\s+)?{_OUTSIDE}",
    # "this data must not leave our EU data center", "this data is restricted to our Canadian operations"
    rf"\b{_SUBJECT}\s+(?:must|should|may|can|does|do|will)\s*(?:not|n't)\s+leave\s+(?:our|my|the|this)\b",
    rf"\b{_SUBJECT}\s+(?:is|are)\s+restricted\s+to\s+our\b",
    # "no public API calls, no cloud inference", "on-prem only"
    r"\bno\s+(?:public\s+api\s+calls|cloud\s+(?:services?|inference|processing)|external\s+(?:models?"
    r"|logging|inference)|cross[- ]border\s+(?:transfers?|processing))\b",
    r"\b(?:local|on[- ]?prem(?:ise)?s?|on[- ]premises|in[- ]house)[- ]only\b",
    # Chinese: process locally, do not send outside, must not leave our data center
    r"本地处理|仅在本地|只在本地|留在(?:我们的)?本地|不离开我们的|不(?:要|能|得)离开"
    rf"|不(?:要|能|得)[^{_CJK_STOP}]{{0,12}}(?:发送|上传|传输|传到|调用)[^{_CJK_STOP}]{{0,8}}(?:外部|云|境外)",
)
_DIRECTIVE = re.compile("|".join(f"(?:{pattern})" for pattern in _PATTERNS))  # on lowercased text
# Every directive names a place inside or outside with one of these (lowercased): the patterns run
# only on the text around them, so a long prompt costs one read (gates.Gate) when it holds none.
_ANCHORS = (
    "local", "prem", "in-house", "in house", "on-site", "on site", "off-site", "off site", "offsite",
    "in our", "on our", "within our", "inside our", "in my", "on my", "within my", "inside my",
    "company's", "cloud", "extern", "outside", "third", "border", "abroad", "leave", "restricted",
    "remote", "hosted", "public", "openai", "anthropic", "chatgpt", "gpt", "claude", "gemini", "internal",
    "本地", "外部", "离开", "境外", "云",
)  # fmt: skip
_ANCHOR_GATE = Gate(_ANCHORS)
_BEFORE, _AFTER = 200, 80  # characters of context a directive may span around its anchor
# Words after which a verb is said to the model ("please keep this local", "you must process it
# on-prem"), not part of a task ("write a script to store the data locally", "an app which can ...").
_IMPERATIVE_AFTER = re.compile(
    r"(?:^|[,;:(\-\u2014]|\b(?:please|kindly|must|should|always|only|and|then|also|so|you|you\s+to|sure\s+to"
    r"|you\s+will|make\s+sure|ensure\s+you|i\s+want\s+you\s+to|i\s+need\s+you\s+to))\s*$"
)
# A question about how to do something locally, not an instruction about this request.
_QUESTION = re.compile(
    r"\b(?:how\s+(?:do|can|could|would|should|to)|what(?:'s|\s+is)\s+the\s+best\s+way|is\s+it\s+possible"
    r"|can\s+i|tutorial|guide\s+to|steps\s+to)\b[^.!?\n]*$"
)


def find_directive(text: str) -> tuple[int, int] | None:
    """The span of the first instruction to keep this request inside, or None."""
    lowered = text.lower()
    if len(lowered) != len(text):  # "İ" lowercases to two characters: keep offsets in the original
        lowered = "".join(char.lower()[0] for char in text)
    windows = []
    for anchor in _ANCHOR_GATE.found(lowered):
        position = lowered.find(anchor)
        while position >= 0:
            windows.append((max(0, position - _BEFORE), position + len(anchor) + _AFTER))
            position = lowered.find(anchor, position + len(anchor) + _AFTER)
    scanned = 0
    for start, end in sorted(windows):
        start = max(start, scanned - _BEFORE)  # overlapping windows: scan the new part and its lead-in
        if end <= scanned:
            continue
        for match in _DIRECTIVE.finditer(lowered, start, end):
            # the sentence's start, looked for no further back than the window reaches: a text with
            # no full stop read back to its start from every match costs quadratic time
            reach = max(0, match.start() - _BEFORE)
            sentence_start = max(lowered.rfind(mark, reach, match.start()) for mark in ".!?\n")
            sentence_start = max(sentence_start, reach - 1)
            if _QUESTION.search(lowered, sentence_start + 1, match.start()):
                continue
            before = lowered[sentence_start + 1 : match.start()]
            said = match.group().split(None, 1)[0] not in _LEADS or _IMPERATIVE_AFTER.search(before)
            if said:
                return match.span()
        scanned = end
    return None
