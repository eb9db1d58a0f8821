using System.Runtime.CompilerServices;

namespace Guard.Sensor.Abi;

[InlineArray(16)]
public struct Bytes16
{
    private byte first;
}

[InlineArray(256)]
public struct Bytes256
{
    private byte first;
}

[InlineArray(512)]
public struct Bytes512
{
    private byte first;
}

[InlineArray(1024)]
public struct Bytes1024
{
    private byte first;
}

[InlineArray(ExecArgsRecord.ChunkCapacity)]
public struct Bytes4096
{
    private byte first;
}

[InlineArray(GuardMethod.Capacity)]
public struct Bytes32
{
    private byte first;
}

[InlineArray(GuardQuarantine.JobCapacity)]
public struct Bytes64
{
    private byte first;
}

[InlineArray(GuardQuarantine.ReasonCapacity)]
public struct Bytes160
{
    private byte first;
}

[InlineArray(2)]
public struct Bytes2
{
    private byte first;
}

[InlineArray(GuardCgroupName.Capacity)]
public struct Bytes128
{
    private byte first;
}

[InlineArray(3)]
public struct Bytes3
{
    private byte first;
}
