"""Knowledge distillation for any luodi task model: KD loss, multi-teacher ensembles, cached teacher logits.

cache = TeacherCache.load(build_cache(path, teachers, train_data, collate), train_data, collate)
student = make_student(teachers[0], layers=3)
distill(student, train_data, collate, evaluate, TrainConfig(...), DistillConfig(alpha=0.5), cache=cache)
"""

from luodi.distill.cache import StaleCacheError, TeacherCache, build_cache, data_hash
from luodi.distill.distiller import (
    DistillationModel,
    DistillConfig,
    combine_teachers,
    default_layer_map,
    dev_weights,
    distill,
    kd_loss,
    make_student,
)

__all__ = [
    "DistillConfig",
    "DistillationModel",
    "StaleCacheError",
    "TeacherCache",
    "build_cache",
    "combine_teachers",
    "data_hash",
    "default_layer_map",
    "dev_weights",
    "distill",
    "kd_loss",
    "make_student",
]
