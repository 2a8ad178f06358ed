"""lmms-eval's task datasets for the Hub-protocol test server: two rows each at the ids lmms-eval 0.7.3
reads (``lmms-lab-encoder/*``), in its columns, with real ``datasets`` Image features (PNG bytes)."""

from __future__ import annotations

import io
from typing import Any

from tests.hub_data import configs
from tests.hub_server import HubServer
from zoo.tasks import TASKS


def _png(color: tuple[int, int, int]) -> dict[str, Any]:
    from PIL import Image

    buf = io.BytesIO()
    Image.new("RGB", (48, 40), color).save(buf, format="PNG")
    return {"bytes": buf.getvalue(), "path": None}


def _rows() -> dict[str, tuple[dict[str, list[Any]], Any]]:
    from datasets import Features, Image, Sequence, Value

    s, images = Value("string"), [_png((200, 30, 30)), _png((30, 30, 200))]
    return {
        "ai2d": (
            {"question": ["Which label shows the sun?", "What eats the grass?"],
             "options": [["A", "B", "C", "D"], ["rabbit", "hawk", "sun", "soil"]], "answer": ["1", "0"], "image": images},
            Features(question=s, options=Sequence(s), answer=s, image=Image()),
        ),
        "chartqa": (
            {"type": ["human_test", "augmented_test"], "question": ["What is the highest value?", "How many bars?"],
             "answer": ["42", "3"], "image": images},
            Features(type=s, question=s, answer=s, image=Image()),
        ),
        "docvqa_val": (
            {"questionId": ["49153", "24580"], "question": ["What is the date?", "Who signed the letter?"],
             "question_types": [["handwritten"], ["layout"]], "image": images, "docId": [14465, 5987],
             "ucsf_document_id": ["pybv0228", "nkbl0226"], "ucsf_document_page_no": ["81", "1"],
             "answers": [["1/8/93"], ["T.F. Riehl"]], "data_split": ["val", "val"]},
            Features(questionId=s, question=s, question_types=Sequence(s), image=Image(), docId=Value("int64"),
                     ucsf_document_id=s, ucsf_document_page_no=s, answers=Sequence(s), data_split=s),
        ),
        "mme": (  # a question pair per image, a cognition category and a perception one (each score needs its own)
            {"question_id": ["code_reasoning/0020.png"] * 2 + ["color/000000061418.jpg"] * 2, "image": images * 2,
             "question": ["Is the output 5? Please answer yes or no.", "Is the output 6? Please answer yes or no.",
                          "Is the vase blue? Please answer yes or no.", "Is the vase red? Please answer yes or no."],
             "answer": ["Yes", "No"] * 2, "category": ["code_reasoning"] * 2 + ["color"] * 2},
            Features(question_id=s, image=Image(), question=s, answer=s, category=s),
        ),
    }  # fmt: skip


def add_vision_datasets(server: HubServer) -> list[str]:
    """Serve the judge-free lmms-eval tasks; returns their names."""
    from datasets import Dataset

    for task, (rows, features) in _rows().items():
        spec = TASKS[task]
        buf = io.BytesIO()
        Dataset.from_dict(rows, features=features).to_parquet(buf)
        if spec.config:
            files = {
                "README.md": configs(spec.config, (spec.split,)),
                f"{spec.config}/{spec.split}-00000-of-00001.parquet": buf.getvalue(),
            }
        else:
            files = {f"data/{spec.split}-00000-of-00001.parquet": buf.getvalue()}
        server.state.craft(f"datasets/{spec.hub_id}", files)
    return list(_rows())
