"""mmdet's CocoDataset, telling the user what it skipped.

mmdet silently drops annotations whose box lies outside its image or is degenerate, and those
whose category id is not among the categories; images without annotations are silently
filtered from training (`filter_empty_gt`). A broken annotation file then trains on less
data with no sign of it. This subclass drops exactly the same things, counts them by reason
with a first example (file name, annotation id) and logs one warning after loading.

What mmdet would not skip, or would train on silently, stops with a :class:`DatasetError`
naming the file, how many and the first few: an annotation file that is not JSON (with line
and column) or not COCO, images listed but missing, boxes with NaN/inf coordinates (mmdet
keeps some, e.g. an infinite width, and they turn every loss NaN), the config's classes
missing from the file's categories, and a dataset left empty by mmdet's filtering.
"""
import json
import math
import os.path as osp
from collections import Counter
from typing import Dict, List, Union

from mmdet.datasets import CocoDataset as MMDetCocoDataset
from mmengine.logging import print_log

from ..errors import DatasetError, first_few
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
        self.non_finite_boxes: List[str] = []
        self._category_names = None  # read while mmdet's COCO object exists (it deletes it)
        try:
            data_list = super().load_data_list()
        except json.JSONDecodeError as e:
            raise DatasetError(f'{self.ann_file}: not valid JSON: {e.msg} at line {e.lineno}, '
                               f'column {e.colno}. Fix or regenerate the file') from None
        except (KeyError, TypeError, AssertionError) as e:  # pycocotools on a non-COCO file
            raise DatasetError(f'{self.ann_file}: not a COCO annotation file '
                               f'({type(e).__name__}: {e}); it needs "images", "annotations" '
                               'and "categories"') from None
        self._check_classes()
        if self.non_finite_boxes:
            raise DatasetError(
                f'{self.ann_file}: {len(self.non_finite_boxes)} annotation(s) with NaN/inf box '
                f'coordinates, e.g. {first_few(self.non_finite_boxes)}. Fix or remove them: '
                'they would make every loss NaN')
        self._check_images_exist(data_list)
        self.images_without_annotations = sum(not d['instances'] for d in data_list)
        summary = self.problem_summary()
        if summary:
            print_log(summary, logger='current', level=30)  # WARNING
        return data_list

    def filter_data(self) -> List[dict]:
        data_list = super().filter_data()
        if not data_list:
            raise DatasetError(
                f'{self.ann_file}: no images left to {"test" if self.test_mode else "train"} '
                f'on ({len(self.data_list)} listed, filter_cfg={self.filter_cfg}, classes '
                f'{self.metainfo["classes"]}): check that the images have annotations of '
                "the config's classes")
        return data_list

    def _check_classes(self) -> None:
        names = self._category_names
        if names is None:  # no image in the file: filter_data names that
            return
        missing = [c for c in self.metainfo['classes'] if c not in names]
        if missing:
            raise DatasetError(
                f"{self.ann_file}: the config's classes {first_few(missing)} are not categories "
                f'of this file (it has {first_few(names, 8)}); set metainfo.classes in the '
                "dataset config to the file's category names")

    def _check_images_exist(self, data_list: List[dict]) -> None:
        paths = [d['img_path'] for d in data_list]
        if not paths or '://' in paths[0]:  # remote storage: checked when read
            return
        missing = [osp.basename(p) for p in paths if not osp.isfile(p)]
        if missing:
            folder = osp.dirname(paths[0])
            raise DatasetError(
                f'{self.ann_file}: {len(missing)} of {len(paths)} images listed are missing '
                f'from {folder}: {first_few(missing)}. Point data_prefix.img at the image '
                'folder, or restore the files')

    def parse_data_info(self, raw_data_info: dict) -> Union[dict, List[dict]]:
        if self._category_names is None:
            self._category_names = [cat['name'] for cat in self.coco.cats.values()]
        img_info = raw_data_info['raw_img_info']
        for ann in raw_data_info['raw_ann_info']:
            if not all(math.isfinite(float(v)) for v in ann['bbox']):
                self.non_finite_boxes.append(
                    f"{img_info['file_name']} annotation {ann.get('id')} (bbox {ann['bbox']})")
                continue
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
