"""Every prompt template of verl_selfplay's data preparation, in one place.

A verl RL row's ``prompt`` is a chat (a list of ``{"role", "content"}`` messages) that verl's agent
loop renders with the model's chat template. The templates below are R1-style: the system message
asks for the reasoning in ``<think> </think>`` and the answer in ``<answer> </answer>``, and says
exactly what the answer must look like, which is what a base model needs to learn the format
from reward alone (DeepSeek-R1-Zero, arXiv 2501.12948, Table 1).

Base models without a usable chat template can be fed the plain R1-Zero layout
(``"<system> User: <question> Assistant: <think>"``) by giving verl :data:`PLAIN_CHAT_TEMPLATE`
as ``actor_rollout_ref.model.custom_chat_template``; the reward functions accept a response that
starts inside the think block.

>>> msgs = chat_messages("kk", "Zoey says ...")
>>> [m["role"] for m in msgs]
['system', 'user']
>>> "<answer> (1) Zoey is a knight" in msgs[0]["content"]
True
>>> chat_messages("mth", "1+1?")
Traceback (most recent call last):
...
ValueError: unknown prompt template 'mth'; valid: kk, r1_math, simplerl
"""

from __future__ import annotations

_R1_FORMAT = (
    "A conversation between User and Assistant. The User asks a question, and the Assistant solves it. "
    "The Assistant first thinks about the reasoning process in the mind and then provides the User with the "
    "answer. The reasoning process and answer are enclosed within <think> </think> and <answer> </answer> tags, "
    "respectively, i.e., <think> reasoning process here </think> <answer> answer here </answer>."
)  # DeepSeek-R1-Zero's template (arXiv 2501.12948, Table 1)

R1_MATH_SYSTEM = _R1_FORMAT + " Put the final answer inside the answer tags as \\boxed{...}."

# Logic-RL's Knights & Knaves instruction (Unakar/Logic-RL, examples/data_preprocess/kk.py).
KK_SYSTEM = (
    _R1_FORMAT + " Now the User asks a logical reasoning problem. After careful thinking, when the Assistant "
    "reaches a final conclusion, the identity of each character must be clearly stated within <answer> </answer> "
    "tags, one per line, i.e., <answer> (1) Zoey is a knight\n(2) Oliver is a knave </answer>."
)

# SimpleRL-Zoo's "simple" prompt for base models (arXiv 2503.18892, §2; hkust-nlp/simpleRL-reason).
SIMPLERL_USER = "{question}\nPlease reason step by step, and put your final answer within \\boxed{{}}."

# template name -> (system message or None, user message format)
TEMPLATES: dict[str, tuple[str | None, str]] = {
    "kk": (KK_SYSTEM, "{question}"),
    "r1_math": (R1_MATH_SYSTEM, "{question}"),
    "simplerl": (None, SIMPLERL_USER),
}

# Renders the messages in the plain R1-Zero layout, no special tokens; ends inside the think block.
PLAIN_CHAT_TEMPLATE = (
    "{% for message in messages %}"
    "{% if message['role'] == 'system' %}{{ message['content'] }}\n"
    "{% elif message['role'] == 'user' %}User: {{ message['content'] }}\n"
    "{% else %}Assistant: {{ message['content'] }}\n{% endif %}"
    "{% endfor %}"
    "{% if add_generation_prompt %}Assistant: <think>{% endif %}"
)


def chat_messages(template: str, question: str) -> list[dict[str, str]]:
    """The chat ``prompt`` of one verl row: ``template`` (a key of :data:`TEMPLATES`) around ``question``.

    >>> chat_messages("simplerl", "What is 2+2?")
    [{'role': 'user', 'content': 'What is 2+2?\\nPlease reason step by step, and put your final answer within \\\\boxed{}.'}]
    """
    if template not in TEMPLATES:
        raise ValueError(f"unknown prompt template {template!r}; valid: {', '.join(sorted(TEMPLATES))}")
    system, user = TEMPLATES[template]
    messages = [{"role": "system", "content": system}] if system else []
    messages.append({"role": "user", "content": user.format(question=question.strip())})
    return messages
