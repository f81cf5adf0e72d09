"""mmdet's CocoDataset, telling the user what it skipped.

mmdet silently drops annotations whose box lies outside its image or is degenerate, and those
whose category id is not among the categories; images without annotations are silently
filtered from training (`filter_empty_gt`). A broken annotation file then trains on less
data with no sign of it. This subclass drops exactly the same things, counts them by reason
with a first example (file name, annotation id) and logs one warning after loading.
"""
from collections import Counter
from typing import Dict, List, Union

from mmdet.datasets import CocoDataset as MMDetCocoDataset
from mmengine.logging import print_log

from ..registry import DATASETS


def _skip_reason(ann: dict, img_info: dict, cat_ids) -> str:
    """Why mmdet's CocoDataset.parse_data_info drops `ann` (same tests, same order), or ''."""
    if ann.get('ignore', False):
        return ''  # an explicit request, not a problem
    x1, y1, w, h = ann['bbox']
    inter_w = max(0, min(x1 + w, img_info['width']) - max(x1, 0))
    inter_h = max(0, min(y1 + h, img_info['height']) - max(y1, 0))
    if inter_w * inter_h == 0:
        return 'box outside the image'
    if ann['area'] <= 0 or w < 1 or h < 1:
        return 'empty or degenerate box'
    if ann['category_id'] not in cat_ids:
        return 'category id not in the categories'
    return ''


@DATASETS.register_module()
class CocoDataset(MMDetCocoDataset):
    """mmdet's CocoDataset plus a counted warning for every kind of skipped annotation."""

    def load_data_list(self) -> List[dict]:
        self.skipped: Counter = Counter()
        self.skip_examples: Dict[str, str] = {}
        data_list = super().load_data_list()
        self.images_without_annotations = sum(not d['instances'] for d in data_list)
        summary = self.problem_summary()
        if summary:
            print_log(summary, logger='current', level=30)  # WARNING
        return data_list

    def parse_data_info(self, raw_data_info: dict) -> Union[dict, List[dict]]:
        img_info = raw_data_info['raw_img_info']
        for ann in raw_data_info['raw_ann_info']:
            reason = _skip_reason(ann, img_info, self.cat_ids)
            if reason:
                self.skipped[reason] += 1
                self.skip_examples.setdefault(
                    reason, f"{img_info['file_name']} annotation {ann.get('id')} "
                    f"(bbox {ann['bbox']}, category {ann['category_id']})")
        return super().parse_data_info(raw_data_info)

    def problem_summary(self) -> str:
        """One line per kind of skipped annotation, or '' when nothing was skipped."""
        lines = [f'{n} annotation(s) skipped: {reason}, e.g. {self.skip_examples[reason]}'
                 for reason, n in sorted(self.skipped.items())]
        if self.images_without_annotations:
            lines.append(f'{self.images_without_annotations} image(s) left without usable '
                         'annotations (filter_cfg.filter_empty_gt drops those without any '
                         'annotation of the classes from training)')
        return f'{self.ann_file}: ' + '; '.join(lines) if lines else ''
