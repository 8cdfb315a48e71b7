"""Quickstart: 3DCam over every block of a small 3D CNN, next to Captum's LayerGradCam.

    python examples/quickstart.py
"""
import torch
from captum.attr import LayerAttribution, LayerGradCam

from captum_3dcam import Counterfactual3DCam, GlobalLocal3DCam
from captum_3dcam.models import Small3DCNN

torch.manual_seed(0)
model = Small3DCNN(num_classes=5).eval()
clips = torch.randn(2, 3, 16, 64, 64)  # (N, C, T, H, W)
layers = [model.conv1, model.conv2, model.conv3, model.conv4]

cam = GlobalLocal3DCam(model, layers)
maps, layer_maps = cam.attribute(clips, return_layer_maps=True)  # target=None: predicted class
print("3DCam:", tuple(maps.shape), "per layer:", [tuple(m.shape) for m in layer_maps])

counter = Counterfactual3DCam(model, layers).attribute(clips)
print("counterfactual 3DCam:", tuple(counter.shape))

predicted = model(clips).argmax(dim=1)
gradcam = LayerGradCam(model, model.conv4).attribute(clips, target=predicted)
gradcam = LayerAttribution.interpolate(gradcam, clips.shape[2:], "trilinear")
print("Captum LayerGradCam on conv4, upsampled:", tuple(gradcam.shape))
