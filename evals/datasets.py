"""The dataset registry: every public file turnout trains or evaluates on, by name.

Each entry names its public source (repository, commit, path), its license and the sha256 of its
bytes. `resolve(name)` finds the file in a local mirror folder (`TURNOUT_DATA_DIR`, laid out like
../shared/data; that folder is the default when it exists beside the checkout), then in the cache
(`~/.cache/turnout/datasets`), and otherwise downloads it from its source into the cache. Every
copy is checked against the registered hash. Nothing here is ever copied into the repository.
"""

from __future__ import annotations

import hashlib
import os
import urllib.request
from dataclasses import dataclass
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]


@dataclass(frozen=True)
class Dataset:
    name: str
    repo: str
    commit: str
    source_path: str
    local_path: str  # where it lies in a mirror folder
    license: str
    sha256: str

    @property
    def url(self) -> str:
        return f"https://raw.githubusercontent.com/{self.repo}/{self.commit}/{self.source_path}"


class DatasetError(Exception):
    pass


REGISTRY: dict[str, Dataset] = {
    d.name: d
    for d in (
        Dataset(
            "mt-bench",
            "lm-sys/FastChat",
            "0e6d3e4b",
            "fastchat/llm_judge/data/mt_bench/question.jsonl",
            "routing/mt_bench_questions.jsonl",
            "Apache-2.0",
            "119565adbab82227089cefdb44c8d7e2cf04dc0a0ec233634c82e7d4e2a944f7",
        ),
        Dataset(
            "vicuna-bench",
            "lm-sys/FastChat",
            "0e6d3e4b",
            "fastchat/llm_judge/data/vicuna_bench/question.jsonl",
            "routing/vicuna_bench_questions.jsonl",
            "Apache-2.0",
            "c248c5c98ba45bb0c2aadae2f270e643bd32679c6c306a3b2a503ac4254cdaa5",
        ),
        Dataset(
            "arena-hard-v2",
            "lmarena/arena-hard-auto",
            "196f6b82",
            "data/arena-hard-v2.0/question.jsonl",
            "routing/arena_hard_v2_questions.jsonl",
            "Apache-2.0",
            "a75cef6623db6b27aec810497b059f0659705d7ff48dcbccc5bd5b130728ac73",
        ),
        Dataset(
            "gsm8k-test",
            "openai/grade-school-math",
            "3101c7d5",
            "grade_school_math/data/test.jsonl",
            "routing/gsm8k_test.jsonl",
            "MIT",
            "3730d312f6e3440559ace48831e51066acaca737f6eabec99bccb9e4b3c39d14",
        ),
        Dataset(
            "humaneval",
            "openai/human-eval",
            "6d43fb98",
            "data/HumanEval.jsonl.gz",
            "routing/humaneval.jsonl.gz",
            "MIT",
            "b796127e635a67f93fb35c04f4cb03cf06f38c8072ee7cee8833d7bee06979ef",
        ),
        Dataset(
            "semantic-router-domains",
            "vllm-project/semantic-router",
            "3d48f8c9",
            "config/knowledge_bases/mmlu/labels.json",
            "routing/semantic_router_domain_labels.json",
            "Apache-2.0",
            "891e4c4a864f8ac6190dbb48343d829a4a9e1a31e8b38def4e3d9cea2c99a06f",
        ),
        Dataset(
            "clinc150",
            "clinc/oos-eval",
            "828f8093",
            "data/data_full.json",
            "routing/clinc150_data_full.json",
            "CC-BY-3.0",
            "36923c3705a59e08fe9c3883d8bc2dd966ef93e22cb78ac41171782a698d56e0",
        ),
        Dataset(
            "routellm-gsm8k",
            "lm-sys/RouteLLM",
            "0b64fdaf",
            "routellm/evals/gsm8k/gsm8k_responses.csv",
            "routing/routellm/gsm8k_responses.csv",
            "Apache-2.0",
            "1f38ed03db354a020f71e92022383dc3cf37bbf2694dea4daaeea7b6c43fe57b",
        ),
        Dataset(
            "routellm-mt-bench",
            "lm-sys/RouteLLM",
            "0b64fdaf",
            "routellm/evals/mt_bench/judgements.jsonl",
            "routing/routellm/mt_bench_judgements.jsonl",
            "Apache-2.0",
            "ffd1d44e7af835c810d35ebd420b88a47acd8aac850f46b149b9889964ae4478",
        ),
        Dataset(
            "routellm-gsm8k-contaminated",
            "lm-sys/RouteLLM",
            "0b64fdaf",
            "routellm/evals/gsm8k/contaminated_prompts.jsonl",
            "routing/routellm/gsm8k_contaminated_prompts.jsonl",
            "Apache-2.0",
            "1f5a7be02148ee0f7f306d233ba76a6573c826cee9499a34f8ef938a1a84c234",
        ),
        Dataset(
            "routellm-mmlu-contaminated",
            "lm-sys/RouteLLM",
            "0b64fdaf",
            "routellm/evals/mmlu/contaminated_prompts.jsonl",
            "routing/routellm/mmlu_contaminated_prompts.jsonl",
            "Apache-2.0",
            "9606c968198eabf5efa46ccba31286392c8e35525d83c86661618ffc5ec6d40e",
        ),
        Dataset(
            "routellm-mt-bench-contaminated",
            "lm-sys/RouteLLM",
            "0b64fdaf",
            "routellm/evals/mt_bench/contaminated_prompts.jsonl",
            "routing/routellm/mt_bench_contaminated_prompts.jsonl",
            "Apache-2.0",
            "a77356ecd7cab6ba9bfb6d7b91c512f83aee4f82309934387a6cdfb915882109",
        ),
        Dataset(
            "presidio-synth-v2",
            "microsoft/presidio-research",
            "7622dec1",
            "data/synth_dataset_v2.json",
            "pii/presidio_synth_dataset_v2.json",
            "MIT",
            "ec08a771ba8135314cafb60752b2295212222ba3a4cd75d73811839c699e0012",
        ),
        Dataset(
            "semantic-router-privacy",
            "vllm-project/semantic-router",
            "3d48f8c9",
            "config/knowledge_bases/privacy/labels.json",
            "pii/semantic_router_privacy_labels.json",
            "Apache-2.0",
            "430140c340fe72d420890991cdc57342773a52ddc680b7bf6050e319dad65d06",
        ),
        Dataset(
            "xstest",
            "paul-rottger/exaggerated-safety",
            "d7bb5bd7",
            "xstest_prompts.csv",
            "pii/xstest_prompts.csv",
            "CC-BY-4.0",
            "11783fb294ed017473ee53c207d71f2161c7672c8d0b037501e78387f801cb5a",
        ),
        Dataset(
            "anthropic-docs",
            "anthropics/anthropic-cookbook",
            "4b36a1e1",
            "skills/retrieval_augmented_generation/data/anthropic_docs.json",
            "rag/anthropic_docs.json",
            "MIT",
            "8e2b9961dfdf22092f5b326a20185ca8cd8ad57156385182ba6ddceacd4b51eb",
        ),
        Dataset(
            "anthropic-docs-eval",
            "anthropics/anthropic-cookbook",
            "4b36a1e1",
            "skills/retrieval_augmented_generation/evaluation/docs_evaluation_dataset.json",
            "rag/anthropic_docs_eval.json",
            "MIT",
            "5c91a737d3467c8fd918fe1a962ca630c560ca3975bc104748f35e5165c67ff0",
        ),
        Dataset(
            "routellm-mmlu-abstract-algebra",
            "lm-sys/RouteLLM",
            "0b64fdaf",
            "routellm/evals/mmlu/responses/mmlu_abstract_algebra.csv",
            "routing/routellm/mmlu/mmlu_abstract_algebra.csv",
            "Apache-2.0",
            "67e564eea42e71fbfcaf616972df952c316e5538376da1c16d691177458b96b9",
        ),
        Dataset(
            "routellm-mmlu-anatomy",
            "lm-sys/RouteLLM",
            "0b64fdaf",
            "routellm/evals/mmlu/responses/mmlu_anatomy.csv",
            "routing/routellm/mmlu/mmlu_anatomy.csv",
            "Apache-2.0",
            "53ebea8257805eeecc25713728264b8235cffad7b720962a3eafc92fd27ef537",
        ),
        Dataset(
            "routellm-mmlu-astronomy",
            "lm-sys/RouteLLM",
            "0b64fdaf",
            "routellm/evals/mmlu/responses/mmlu_astronomy.csv",
            "routing/routellm/mmlu/mmlu_astronomy.csv",
            "Apache-2.0",
            "49915ece9dfe8aadbd351f221ada2ea86b6f832ce49fa64d1622a0f066c19794",
        ),
        Dataset(
            "routellm-mmlu-business-ethics",
            "lm-sys/RouteLLM",
            "0b64fdaf",
            "routellm/evals/mmlu/responses/mmlu_business_ethics.csv",
            "routing/routellm/mmlu/mmlu_business_ethics.csv",
            "Apache-2.0",
            "13a45bed754ffe8f0e7f0348e69085c648a1ae0e91aa76cd5e6906fa45f7ec8e",
        ),
        Dataset(
            "routellm-mmlu-clinical-knowledge",
            "lm-sys/RouteLLM",
            "0b64fdaf",
            "routellm/evals/mmlu/responses/mmlu_clinical_knowledge.csv",
            "routing/routellm/mmlu/mmlu_clinical_knowledge.csv",
            "Apache-2.0",
            "5ea37709bfbad4df7a3fcbd8973413f7645a2adfef9772490f09d3f293ffe882",
        ),
        Dataset(
            "routellm-mmlu-college-biology",
            "lm-sys/RouteLLM",
            "0b64fdaf",
            "routellm/evals/mmlu/responses/mmlu_college_biology.csv",
            "routing/routellm/mmlu/mmlu_college_biology.csv",
            "Apache-2.0",
            "c38620db5b9f6f1b0fde7bc8d8299b8e2305c4dacbb1567c904cd51618d627d5",
        ),
        Dataset(
            "routellm-mmlu-college-chemistry",
            "lm-sys/RouteLLM",
            "0b64fdaf",
            "routellm/evals/mmlu/responses/mmlu_college_chemistry.csv",
            "routing/routellm/mmlu/mmlu_college_chemistry.csv",
            "Apache-2.0",
            "78ca6ba22ff25c8fdb93e1c6e84384e72522106c73ed5ee9fed620928ce395ce",
        ),
        Dataset(
            "routellm-mmlu-college-computer-science",
            "lm-sys/RouteLLM",
            "0b64fdaf",
            "routellm/evals/mmlu/responses/mmlu_college_computer_science.csv",
            "routing/routellm/mmlu/mmlu_college_computer_science.csv",
            "Apache-2.0",
            "8a7b2a87a36b428c9d1a8f12ce3b01cf7920f0a7146d6f8a111da6749c332da3",
        ),
        Dataset(
            "routellm-mmlu-college-mathematics",
            "lm-sys/RouteLLM",
            "0b64fdaf",
            "routellm/evals/mmlu/responses/mmlu_college_mathematics.csv",
            "routing/routellm/mmlu/mmlu_college_mathematics.csv",
            "Apache-2.0",
            "3f22f42779c48509c66e21d7d1fc3054eb0256c1b5b772bb6d9a3af1b253238b",
        ),
        Dataset(
            "routellm-mmlu-college-medicine",
            "lm-sys/RouteLLM",
            "0b64fdaf",
            "routellm/evals/mmlu/responses/mmlu_college_medicine.csv",
            "routing/routellm/mmlu/mmlu_college_medicine.csv",
            "Apache-2.0",
            "63d71d29e630fc6538e1705a51f4267bdbbdea0fa7ee85056ad7d6f8f10d3987",
        ),
        Dataset(
            "routellm-mmlu-college-physics",
            "lm-sys/RouteLLM",
            "0b64fdaf",
            "routellm/evals/mmlu/responses/mmlu_college_physics.csv",
            "routing/routellm/mmlu/mmlu_college_physics.csv",
            "Apache-2.0",
            "8162a0660d4ef7b963088e0a176d4b8630096127a0d0b5ed003f649cbad34455",
        ),
        Dataset(
            "routellm-mmlu-computer-security",
            "lm-sys/RouteLLM",
            "0b64fdaf",
            "routellm/evals/mmlu/responses/mmlu_computer_security.csv",
            "routing/routellm/mmlu/mmlu_computer_security.csv",
            "Apache-2.0",
            "26446faf7460f03aa2d82a05c170faedb5cbf6d7bdda133b1146229107097d1c",
        ),
        Dataset(
            "routellm-mmlu-conceptual-physics",
            "lm-sys/RouteLLM",
            "0b64fdaf",
            "routellm/evals/mmlu/responses/mmlu_conceptual_physics.csv",
            "routing/routellm/mmlu/mmlu_conceptual_physics.csv",
            "Apache-2.0",
            "ea40473704b64cb60d564ffe91962848ec6fc3106b40089d08cebc98d5c7226d",
        ),
        Dataset(
            "routellm-mmlu-econometrics",
            "lm-sys/RouteLLM",
            "0b64fdaf",
            "routellm/evals/mmlu/responses/mmlu_econometrics.csv",
            "routing/routellm/mmlu/mmlu_econometrics.csv",
            "Apache-2.0",
            "927b4d877cec8697f3b8378bb7e7c7a279babaea2edacf350ea50908701907b9",
        ),
        Dataset(
            "routellm-mmlu-electrical-engineering",
            "lm-sys/RouteLLM",
            "0b64fdaf",
            "routellm/evals/mmlu/responses/mmlu_electrical_engineering.csv",
            "routing/routellm/mmlu/mmlu_electrical_engineering.csv",
            "Apache-2.0",
            "de2fb7c2e9addb4808f5b3f7c79efbfdfb86216235bb7dc28ab70bc53664f11e",
        ),
        Dataset(
            "routellm-mmlu-elementary-mathematics",
            "lm-sys/RouteLLM",
            "0b64fdaf",
            "routellm/evals/mmlu/responses/mmlu_elementary_mathematics.csv",
            "routing/routellm/mmlu/mmlu_elementary_mathematics.csv",
            "Apache-2.0",
            "88697ff0d238b5852c7a959379dc8b0b45c3554ed4b2ee7cbb7ffc34e06c7cf5",
        ),
        Dataset(
            "routellm-mmlu-formal-logic",
            "lm-sys/RouteLLM",
            "0b64fdaf",
            "routellm/evals/mmlu/responses/mmlu_formal_logic.csv",
            "routing/routellm/mmlu/mmlu_formal_logic.csv",
            "Apache-2.0",
            "094a462626468569ad595c03e66e73a299188cfa175248b499dba94e005506e6",
        ),
        Dataset(
            "routellm-mmlu-global-facts",
            "lm-sys/RouteLLM",
            "0b64fdaf",
            "routellm/evals/mmlu/responses/mmlu_global_facts.csv",
            "routing/routellm/mmlu/mmlu_global_facts.csv",
            "Apache-2.0",
            "6f75ddf7d6eb94ac0471529a85ff7f8b738c9f4055185b3114eed26393222d06",
        ),
        Dataset(
            "routellm-mmlu-high-school-biology",
            "lm-sys/RouteLLM",
            "0b64fdaf",
            "routellm/evals/mmlu/responses/mmlu_high_school_biology.csv",
            "routing/routellm/mmlu/mmlu_high_school_biology.csv",
            "Apache-2.0",
            "444982fc2c750ab8cbc6942a0c0267040aa5023c1d2364247d20e2a28b4e325d",
        ),
        Dataset(
            "routellm-mmlu-high-school-chemistry",
            "lm-sys/RouteLLM",
            "0b64fdaf",
            "routellm/evals/mmlu/responses/mmlu_high_school_chemistry.csv",
            "routing/routellm/mmlu/mmlu_high_school_chemistry.csv",
            "Apache-2.0",
            "ae5e62479365dcd056354c568f60da65b1df9f1de57dda3953a8e9933a6f12e4",
        ),
        Dataset(
            "routellm-mmlu-high-school-computer-science",
            "lm-sys/RouteLLM",
            "0b64fdaf",
            "routellm/evals/mmlu/responses/mmlu_high_school_computer_science.csv",
            "routing/routellm/mmlu/mmlu_high_school_computer_science.csv",
            "Apache-2.0",
            "d156d9448a6e899f7f976a0afac148a928bf709a2baa573f0c407854a25bdb11",
        ),
        Dataset(
            "routellm-mmlu-high-school-european-history",
            "lm-sys/RouteLLM",
            "0b64fdaf",
            "routellm/evals/mmlu/responses/mmlu_high_school_european_history.csv",
            "routing/routellm/mmlu/mmlu_high_school_european_history.csv",
            "Apache-2.0",
            "c64afd6c5e30ef0cd5c10beab961ac05e7ba55d6b48cd93bf6ad0a45f90515bf",
        ),
        Dataset(
            "routellm-mmlu-high-school-geography",
            "lm-sys/RouteLLM",
            "0b64fdaf",
            "routellm/evals/mmlu/responses/mmlu_high_school_geography.csv",
            "routing/routellm/mmlu/mmlu_high_school_geography.csv",
            "Apache-2.0",
            "21b12044be4a6b9813880ad46372006dc0846e7f85fa46883bb73dbd90fba30a",
        ),
        Dataset(
            "routellm-mmlu-high-school-government-and-politics",
            "lm-sys/RouteLLM",
            "0b64fdaf",
            "routellm/evals/mmlu/responses/mmlu_high_school_government_and_politics.csv",
            "routing/routellm/mmlu/mmlu_high_school_government_and_politics.csv",
            "Apache-2.0",
            "2791689acc61775a5857f4f3a5fd248d30552553c3a96f6ee63dc28285437259",
        ),
        Dataset(
            "routellm-mmlu-high-school-macroeconomics",
            "lm-sys/RouteLLM",
            "0b64fdaf",
            "routellm/evals/mmlu/responses/mmlu_high_school_macroeconomics.csv",
            "routing/routellm/mmlu/mmlu_high_school_macroeconomics.csv",
            "Apache-2.0",
            "73b931a2a06ba74a5c9f1e005d45a25004e36be5d075d98f8ebcf89b3fda367b",
        ),
        Dataset(
            "routellm-mmlu-high-school-mathematics",
            "lm-sys/RouteLLM",
            "0b64fdaf",
            "routellm/evals/mmlu/responses/mmlu_high_school_mathematics.csv",
            "routing/routellm/mmlu/mmlu_high_school_mathematics.csv",
            "Apache-2.0",
            "151b2a736981b7b20f3bad99de6a573e4692d68cf87020e943b601b70bb37390",
        ),
        Dataset(
            "routellm-mmlu-high-school-microeconomics",
            "lm-sys/RouteLLM",
            "0b64fdaf",
            "routellm/evals/mmlu/responses/mmlu_high_school_microeconomics.csv",
            "routing/routellm/mmlu/mmlu_high_school_microeconomics.csv",
            "Apache-2.0",
            "f7ea151efb4c9d96374db3358ac7e97e4d8349e26715f61dac98bc9d854ca046",
        ),
        Dataset(
            "routellm-mmlu-high-school-physics",
            "lm-sys/RouteLLM",
            "0b64fdaf",
            "routellm/evals/mmlu/responses/mmlu_high_school_physics.csv",
            "routing/routellm/mmlu/mmlu_high_school_physics.csv",
            "Apache-2.0",
            "1e2103fc8f7f1cfac7c00952b26db2418acab092486af78a9c51c551ae2ff9be",
        ),
        Dataset(
            "routellm-mmlu-high-school-psychology",
            "lm-sys/RouteLLM",
            "0b64fdaf",
            "routellm/evals/mmlu/responses/mmlu_high_school_psychology.csv",
            "routing/routellm/mmlu/mmlu_high_school_psychology.csv",
            "Apache-2.0",
            "d11604f2c7a2425258d5b9a285ef71737c011cc3a91456890f088a0ee4c55212",
        ),
        Dataset(
            "routellm-mmlu-high-school-statistics",
            "lm-sys/RouteLLM",
            "0b64fdaf",
            "routellm/evals/mmlu/responses/mmlu_high_school_statistics.csv",
            "routing/routellm/mmlu/mmlu_high_school_statistics.csv",
            "Apache-2.0",
            "de6642bcd93d7a80e7bbd73d987a44d67b6e537b47749ddc518122fd582703bb",
        ),
        Dataset(
            "routellm-mmlu-high-school-us-history",
            "lm-sys/RouteLLM",
            "0b64fdaf",
            "routellm/evals/mmlu/responses/mmlu_high_school_us_history.csv",
            "routing/routellm/mmlu/mmlu_high_school_us_history.csv",
            "Apache-2.0",
            "a71186d143363e203b2f216d78c9d21f10cca51de455ef176c9c01b77f546592",
        ),
        Dataset(
            "routellm-mmlu-high-school-world-history",
            "lm-sys/RouteLLM",
            "0b64fdaf",
            "routellm/evals/mmlu/responses/mmlu_high_school_world_history.csv",
            "routing/routellm/mmlu/mmlu_high_school_world_history.csv",
            "Apache-2.0",
            "e9c52305977dc37b3e48eee727ad933b2d24d96ca3a06aec865a8900b1e87d2c",
        ),
        Dataset(
            "routellm-mmlu-human-aging",
            "lm-sys/RouteLLM",
            "0b64fdaf",
            "routellm/evals/mmlu/responses/mmlu_human_aging.csv",
            "routing/routellm/mmlu/mmlu_human_aging.csv",
            "Apache-2.0",
            "0d6c4109b4f61f138781ce50bbc60ff2e90dd451694d3926a088be5a5bd88aa8",
        ),
        Dataset(
            "routellm-mmlu-human-sexuality",
            "lm-sys/RouteLLM",
            "0b64fdaf",
            "routellm/evals/mmlu/responses/mmlu_human_sexuality.csv",
            "routing/routellm/mmlu/mmlu_human_sexuality.csv",
            "Apache-2.0",
            "20916037e3012731883f926738daf47ed994f74ba25518fdb7f0df72a81143fd",
        ),
        Dataset(
            "routellm-mmlu-international-law",
            "lm-sys/RouteLLM",
            "0b64fdaf",
            "routellm/evals/mmlu/responses/mmlu_international_law.csv",
            "routing/routellm/mmlu/mmlu_international_law.csv",
            "Apache-2.0",
            "e389b886e3e1570bfdf798f6f56dc3c675350200c5baf0f41a0766294ff312eb",
        ),
        Dataset(
            "routellm-mmlu-jurisprudence",
            "lm-sys/RouteLLM",
            "0b64fdaf",
            "routellm/evals/mmlu/responses/mmlu_jurisprudence.csv",
            "routing/routellm/mmlu/mmlu_jurisprudence.csv",
            "Apache-2.0",
            "7e94c3849231be7b2654db11e44ee51531f8474e300fe83b1e05438df3038f0b",
        ),
        Dataset(
            "routellm-mmlu-logical-fallacies",
            "lm-sys/RouteLLM",
            "0b64fdaf",
            "routellm/evals/mmlu/responses/mmlu_logical_fallacies.csv",
            "routing/routellm/mmlu/mmlu_logical_fallacies.csv",
            "Apache-2.0",
            "fa2d94cd2e901621aaebd0a7e64560b5dbbe4249086795398533eed2561c0c1e",
        ),
        Dataset(
            "routellm-mmlu-machine-learning",
            "lm-sys/RouteLLM",
            "0b64fdaf",
            "routellm/evals/mmlu/responses/mmlu_machine_learning.csv",
            "routing/routellm/mmlu/mmlu_machine_learning.csv",
            "Apache-2.0",
            "9301e928481be6e20b3541e1ac112b25a4a71338b21592978c0d219cb6240020",
        ),
        Dataset(
            "routellm-mmlu-management",
            "lm-sys/RouteLLM",
            "0b64fdaf",
            "routellm/evals/mmlu/responses/mmlu_management.csv",
            "routing/routellm/mmlu/mmlu_management.csv",
            "Apache-2.0",
            "a00b12ab0265918f9335a85ce02303ddaea0491a7b099f88a05986eeac4aa4fb",
        ),
        Dataset(
            "routellm-mmlu-marketing",
            "lm-sys/RouteLLM",
            "0b64fdaf",
            "routellm/evals/mmlu/responses/mmlu_marketing.csv",
            "routing/routellm/mmlu/mmlu_marketing.csv",
            "Apache-2.0",
            "3ee0b6560ebe0eb4f14ce63227d6f6ec8cb8b6e57e345eae9460be742672f36c",
        ),
        Dataset(
            "routellm-mmlu-medical-genetics",
            "lm-sys/RouteLLM",
            "0b64fdaf",
            "routellm/evals/mmlu/responses/mmlu_medical_genetics.csv",
            "routing/routellm/mmlu/mmlu_medical_genetics.csv",
            "Apache-2.0",
            "7c830f87dcbc0029137b3400cf361931831cb57dda55717a64e72ad74663d5df",
        ),
        Dataset(
            "routellm-mmlu-miscellaneous",
            "lm-sys/RouteLLM",
            "0b64fdaf",
            "routellm/evals/mmlu/responses/mmlu_miscellaneous.csv",
            "routing/routellm/mmlu/mmlu_miscellaneous.csv",
            "Apache-2.0",
            "c2e1a5b0394a8429f55b6340e1865166ac17ec6b3571523005e413b3b2843b9f",
        ),
        Dataset(
            "routellm-mmlu-moral-disputes",
            "lm-sys/RouteLLM",
            "0b64fdaf",
            "routellm/evals/mmlu/responses/mmlu_moral_disputes.csv",
            "routing/routellm/mmlu/mmlu_moral_disputes.csv",
            "Apache-2.0",
            "8b2b973b1987b724f39fd10970604d7f1150747a0db9ce766c193bd978c9d0c4",
        ),
        Dataset(
            "routellm-mmlu-moral-scenarios",
            "lm-sys/RouteLLM",
            "0b64fdaf",
            "routellm/evals/mmlu/responses/mmlu_moral_scenarios.csv",
            "routing/routellm/mmlu/mmlu_moral_scenarios.csv",
            "Apache-2.0",
            "78ded6fdca1cd0d5c4ed16a5ed4aebf2e98401b9c00b20e565e6cce5bf1153c7",
        ),
        Dataset(
            "routellm-mmlu-nutrition",
            "lm-sys/RouteLLM",
            "0b64fdaf",
            "routellm/evals/mmlu/responses/mmlu_nutrition.csv",
            "routing/routellm/mmlu/mmlu_nutrition.csv",
            "Apache-2.0",
            "ba197fbf4b6c5034414d66ea7747211056cf5f709f83d919d2d856245720cc51",
        ),
        Dataset(
            "routellm-mmlu-philosophy",
            "lm-sys/RouteLLM",
            "0b64fdaf",
            "routellm/evals/mmlu/responses/mmlu_philosophy.csv",
            "routing/routellm/mmlu/mmlu_philosophy.csv",
            "Apache-2.0",
            "2f30ad01ab529ddea00dff4ff87e950fef838a78754c94f6884120628a7d0591",
        ),
        Dataset(
            "routellm-mmlu-prehistory",
            "lm-sys/RouteLLM",
            "0b64fdaf",
            "routellm/evals/mmlu/responses/mmlu_prehistory.csv",
            "routing/routellm/mmlu/mmlu_prehistory.csv",
            "Apache-2.0",
            "afc816d4b78814627bae9b8c3730a9bb72bd958ff6259fd36c981777cfe83753",
        ),
        Dataset(
            "routellm-mmlu-professional-accounting",
            "lm-sys/RouteLLM",
            "0b64fdaf",
            "routellm/evals/mmlu/responses/mmlu_professional_accounting.csv",
            "routing/routellm/mmlu/mmlu_professional_accounting.csv",
            "Apache-2.0",
            "fe5ee976a625832ecf624086103619523d063a3a728c60681b6a53c55b638a37",
        ),
        Dataset(
            "routellm-mmlu-professional-law",
            "lm-sys/RouteLLM",
            "0b64fdaf",
            "routellm/evals/mmlu/responses/mmlu_professional_law.csv",
            "routing/routellm/mmlu/mmlu_professional_law.csv",
            "Apache-2.0",
            "60a4308df4f481ff8840590b29061835207b50a9f06a9fc68baf12b114f7e2e0",
        ),
        Dataset(
            "routellm-mmlu-professional-medicine",
            "lm-sys/RouteLLM",
            "0b64fdaf",
            "routellm/evals/mmlu/responses/mmlu_professional_medicine.csv",
            "routing/routellm/mmlu/mmlu_professional_medicine.csv",
            "Apache-2.0",
            "6fda30b523e4e2ce8b1f18e871a0722190a4ac81ec377a75fbba4a63e0b510f7",
        ),
        Dataset(
            "routellm-mmlu-professional-psychology",
            "lm-sys/RouteLLM",
            "0b64fdaf",
            "routellm/evals/mmlu/responses/mmlu_professional_psychology.csv",
            "routing/routellm/mmlu/mmlu_professional_psychology.csv",
            "Apache-2.0",
            "bfb3a7fb653e2b195d3fa258894af64d3f1c3dbd4059c1e0feb728131d20f9b3",
        ),
        Dataset(
            "routellm-mmlu-public-relations",
            "lm-sys/RouteLLM",
            "0b64fdaf",
            "routellm/evals/mmlu/responses/mmlu_public_relations.csv",
            "routing/routellm/mmlu/mmlu_public_relations.csv",
            "Apache-2.0",
            "2196279ea2535fbda62509c3156209b764459a3d515a9ba84b69cf16bb4c27d0",
        ),
        Dataset(
            "routellm-mmlu-security-studies",
            "lm-sys/RouteLLM",
            "0b64fdaf",
            "routellm/evals/mmlu/responses/mmlu_security_studies.csv",
            "routing/routellm/mmlu/mmlu_security_studies.csv",
            "Apache-2.0",
            "1354bb17649f95b7dd8ef3179e22329abe6bef84e639d63370ae9e80b2509905",
        ),
        Dataset(
            "routellm-mmlu-sociology",
            "lm-sys/RouteLLM",
            "0b64fdaf",
            "routellm/evals/mmlu/responses/mmlu_sociology.csv",
            "routing/routellm/mmlu/mmlu_sociology.csv",
            "Apache-2.0",
            "903ba6259b13f2877607abef22b7b19cb575104268d4ced615e3129d3caafb47",
        ),
        Dataset(
            "routellm-mmlu-us-foreign-policy",
            "lm-sys/RouteLLM",
            "0b64fdaf",
            "routellm/evals/mmlu/responses/mmlu_us_foreign_policy.csv",
            "routing/routellm/mmlu/mmlu_us_foreign_policy.csv",
            "Apache-2.0",
            "f1c1d266753a3f161e2018c16c6948fb78c7f5e506a10b4fc0441049962a6c69",
        ),
        Dataset(
            "routellm-mmlu-virology",
            "lm-sys/RouteLLM",
            "0b64fdaf",
            "routellm/evals/mmlu/responses/mmlu_virology.csv",
            "routing/routellm/mmlu/mmlu_virology.csv",
            "Apache-2.0",
            "d525f1ba88982befd42140e73822fe940e73db82bbdcdd569d95f26c3dd41e68",
        ),
        Dataset(
            "routellm-mmlu-world-religions",
            "lm-sys/RouteLLM",
            "0b64fdaf",
            "routellm/evals/mmlu/responses/mmlu_world_religions.csv",
            "routing/routellm/mmlu/mmlu_world_religions.csv",
            "Apache-2.0",
            "49dc00d44e069ecaac6a7f7e2188f4a8bce5df56ee91bb15f55519d07f64af8e",
        ),
    )
}


def mirror_dirs() -> list[Path]:
    dirs = []
    if os.environ.get("TURNOUT_DATA_DIR"):
        dirs.append(Path(os.environ["TURNOUT_DATA_DIR"]))
    dirs.append(REPO_ROOT.parent / "shared" / "data")
    return dirs


def cache_dir() -> Path:
    return Path(os.environ.get("TURNOUT_CACHE_DIR", Path.home() / ".cache" / "turnout")) / "datasets"


def _digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def resolve(name: str, *, download: bool = True) -> Path:
    """The local path of a registered dataset, verified against its sha256."""
    try:
        dataset = REGISTRY[name]
    except KeyError:
        raise DatasetError(f"unknown dataset '{name}'; known: {', '.join(sorted(REGISTRY))}") from None
    candidates = [folder / dataset.local_path for folder in mirror_dirs()] + [
        cache_dir() / dataset.local_path
    ]
    for path in candidates:
        if path.is_file():
            if _digest(path) != dataset.sha256:
                raise DatasetError(f"{path} does not match the registered sha256 of '{name}'")
            return path
    if not download:
        raise DatasetError(f"dataset '{name}' is not in {', '.join(str(p.parent) for p in candidates)}")
    target = cache_dir() / dataset.local_path
    target.parent.mkdir(parents=True, exist_ok=True)
    partial = target.with_suffix(target.suffix + ".part")
    try:
        with urllib.request.urlopen(dataset.url, timeout=60) as response:
            partial.write_bytes(response.read())
    except OSError as error:
        raise DatasetError(
            f"dataset '{name}' is not in a mirror folder (set TURNOUT_DATA_DIR) and could not be downloaded: {error}"
        ) from None
    if _digest(partial) != dataset.sha256:
        partial.unlink()
        raise DatasetError(f"download of '{name}' from {dataset.url} does not match its sha256")
    partial.rename(target)
    return target


def names(prefix: str = "") -> list[str]:
    return sorted(name for name in REGISTRY if name.startswith(prefix))
