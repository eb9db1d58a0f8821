using System.Text;
using Guard.Sensor.Events;

namespace Guard.Sensor.Output;

/// <summary>
/// A confined job's denied exec or GPU open: event.category process,
/// event.type denied (info in audit, where nothing was denied),
/// event.action confine-exec or confine-gpu; file.path for an exec;
/// guard.confine the section and what it denied; guard.job and guard.ancestry.
/// </summary>
internal sealed class EcsDenialFields(EcsHeader header, EcsProcessFields processes)
{
    public void Write(JsonLineWriter w, ProcessDenialEvent d)
    {
        header.Event(w, d.Sequence, d.Enforced ? "denied"u8 : "info"u8, "process"u8, Encoding.UTF8.GetBytes(d.ApprovalId is null ? "confine-" + d.What : "confine-ask"),
            d.Enforced ? "success"u8 : "unknown"u8, dataset: "guard.response"u8,
            reason: d.Enforced ? $"denied by [[confine]] {d.Section}" : $"would be denied by [[confine]] {d.Section} (audit)");
        processes.Process(w, d.Process);
        if (d.Path is { } path)
        {
            w.StartObject("file"u8);
            w.Text("path"u8, path);
            if (d.Sha256 is { } sha)
            {
                w.StartObject("hash"u8);
                w.Text("sha256"u8, sha);
                w.EndObject();
            }
            w.EndObject();
        }
        w.StartObject("guard"u8);
        w.StartObject("confine"u8);
        w.Text("section"u8, d.Section);
        w.Text("source"u8, d.Source);
        w.Text("mode"u8, d.Mode);
        w.Text("what"u8, d.What);
        if (d.What == "exec")
        {
            w.Bool("killed"u8, d.Killed);
            w.Text("by"u8, d.By);
            w.StartArray("classes"u8);
            foreach (string c in d.Classes)
                w.TextItem(c);
            w.EndArray();
            w.StartArray("denied_by"u8);
            foreach (string c in d.DeniedBy)
                w.TextItem(c);
            w.EndArray();
            if (d.DelayMs is { } delay)
                w.Number("delay_ms"u8, delay);
        }
        if (d.Device is { } device)
        {
            w.StartObject("device"u8);
            w.Number("major"u8, device.Major);
            w.Number("minor"u8, device.Minor);
            w.EndObject();
        }
        w.EndObject();
        if (d.ApprovalId is { } id)
            EcsApprovalFields.Request(w, id, d.ApprovalExpiresUnixMs);
        if (d.Process is { } p)
        {
            EcsLineageFields.Job(w, p, withCgroup: true);
            EcsLineageFields.Ancestry(w, p);
        }
        w.EndObject();
    }
}
