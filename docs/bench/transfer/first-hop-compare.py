# Compares the results of `pipeline run --first-hop raw` with jpeg:90 and jpeg:75 runs of the same source (see README,
# "The first hop"): faces matched greedily at IoU >= 0.5 (recall, precision, F1, mean IoU), 0/180 agreement and |dP(0)|.
# The runs it reads, in FOLDER (its argument; default '.'), were made with, for M in blazeface-back-256 and
# paddleocr-textdir-cls, S in images:$D, video:$D/Megamind.avi and video:$D/vtest.avi (D=/usr/share/doc/opencv-doc/examples/data,
# N the source's last path part: data, Megamind.avi, vtest.avi) and H in raw, jpeg:90, jpeg:75:
#   pipeline run --model models/$M.onnx --nodes 1 --frames 200 --fps 0 --source $S --first-hop $H \
#     --results FOLDER/$M-$N-$H.jsonl --json > FOLDER/$M-$N-$H.json
import json, os, sys
folder = sys.argv[1] if len(sys.argv) > 1 else '.'
def lines(p): return [json.loads(l) for l in open(p)]
def iou(a,b):
    w=min(a[0]+a[2],b[0]+b[2])-max(a[0],b[0]); h=min(a[1]+a[3],b[1]+b[3])-max(a[1],b[1])
    i=max(0,w)*max(0,h); u=a[2]*a[3]+b[2]*b[3]-i
    return 0 if u<=0 else i/u
def faces(l): return [[f['box'][k] for k in ('x','y','width','height')] for f in l['blazeface']['faces']]
def p0(l):
    d=l['paddleocr-cls']; return d['score'] if d['class']==0 else 1-d['score']
for m in ('blazeface-back-256','paddleocr-textdir-cls'):
    for src in ('data','Megamind.avi','vtest.avi'):
        rawp=f'{folder}/{m}-{src}-raw.jsonl'
        if not os.path.exists(rawp): continue
        raw=lines(rawp); rj=json.load(open(f'{folder}/{m}-{src}-raw.json'))
        print(f'{m} {src}: {len(raw)} frames, raw {rj["firstHopBytesPerFrame"]} B/frame, {rj["framesPerSecond"]} fps')
        for hop in ('jpeg:90','jpeg:75'):
            p=f'{folder}/{m}-{src}-{hop}.jsonl'
            if not os.path.exists(p) or os.path.getsize(p)==0: continue
            j=lines(p); jj=json.load(open(f'{folder}/{m}-{src}-{hop}.json'))
            assert [x['frame'] for x in j]==[x['frame'] for x in raw]
            out=f'  {hop}: {jj["firstHopBytesPerFrame"]} B/frame ({rj["firstHopBytesPerFrame"]/jj["firstHopBytesPerFrame"]:.1f}x), encode {jj["firstHopEncodeMsPerFrame"]} ms/frame, clean {jj["clean"]} failed {jj["failed"]}'
            if m.startswith('blaze'):
                exp=tp=found=0; ious=[]
                for r,q in zip(raw,j):
                    fr,fq=faces(r),faces(q); exp+=len(fr); found+=len(fq)
                    used=set()
                    for a in fr:
                        best,bi=0,-1
                        for i,b in enumerate(fq):
                            if i in used: continue
                            v=iou(a,b)
                            if v>best: best,bi=v,i
                        if best>=0.5: tp+=1; used.add(bi); ious.append(best)
                rec=tp/exp if exp else 1; prec=tp/found if found else 1; f1=2*rec*prec/(rec+prec) if rec+prec else 0
                out+=f'; faces: {exp} raw boxes, recall {rec:.3f} precision {prec:.3f} F1 {f1:.4f} mean IoU {sum(ious)/len(ious) if ious else 0:.3f}'
            else:
                agree=sum((p0(a)>=0.5)==(p0(b)>=0.5) for a,b in zip(raw,j))/len(raw)
                d=[abs(p0(a)-p0(b)) for a,b in zip(raw,j)]
                out+=f'; 0/180 agreement {agree:.3f}, |dP(0)| mean {sum(d)/len(d):.3f} max {max(d):.3f}'
            print(out)
